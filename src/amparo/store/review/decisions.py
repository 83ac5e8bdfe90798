"""Reviewers' decisions on case items: record one, take the latest back within its grace,
and find the false positives whose preserved copy may go."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update

from amparo.clock import as_utc
from amparo.errors import ConflictError, NotFoundError
from amparo.review.model import Decision, DecisionResult, UndoResult
from amparo.store.review.false_positives import count as count_false_positives
from amparo.store.review.false_positives import uncount as uncount_false_positives
from amparo.store.review.rows import (
    case_of_item,
    decision_of,
    decision_t,
    evidence_t,
    has_false_positive,
    item_t,
    latest_decisions,
    settle_case,
)
from amparo.store.uow import Database


class DecisionRepository:
    """The ``review_decisions`` table (and the item and case statuses that follow from it).
    The latest decision on an item counts; earlier ones stay. Every change records its audit
    entry in the same transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def decisions(self, item_id: int) -> list[Decision]:
        """Every decision on an item, oldest first."""
        with self._db.reading() as conn:
            rows = conn.execute(
                select(decision_t).where(decision_t.c.item_id == item_id).order_by(decision_t.c.id)
            ).all()
        return [decision_of(r) for r in rows]

    def decide(
        self,
        item_id: int,
        *,
        kind: str,
        classification: str | None,
        annotations: Sequence[str],
        note: str | None,
        reviewer: str,
        at: datetime,
        count_against: Sequence[int] = (),
        actor: str,
    ) -> DecisionResult:
        """Record a decision (the item's new status follows from ``kind``). When ``kind`` is
        ``false_positive`` and the item was never called one before, one false positive is
        counted against each entry id of ``count_against``."""
        with self._db.transaction(refresh=False) as tx:
            case_id = case_of_item(tx.conn, item_id)
            if case_id is None:
                raise NotFoundError(f"no case item {item_id}", hint="see `amparo cases show`")
            before = latest_decisions(tx.conn, [item_id]).get(item_id)
            previous = before.kind if before is not None else None
            # An item counts against its entries once, however often it is called a false
            # positive (also after a decision in between).
            counted_before = has_false_positive(tx.conn, item_id)
            decision_id = tx.conn.execute(
                insert(decision_t)
                .values(
                    item_id=item_id,
                    kind=kind,
                    classification=classification,
                    annotations=json.dumps(list(annotations)),
                    note=note,
                    reviewer=reviewer,
                    at=at,
                )
                .returning(decision_t.c.id)
            ).scalar_one()
            status = "escalated" if kind == "escalate" else "decided"
            tx.conn.execute(update(item_t).where(item_t.c.id == item_id).values(status=status))
            settle_case(tx.conn, case_id, at)
            decision = Decision(
                kind=kind,
                reviewer=reviewer,
                at=as_utc(at),
                classification=classification,
                annotations=tuple(annotations),
                note=note,
                id=int(decision_id),
            )
            result = DecisionResult(case_id=case_id, decision=decision, previous=previous)
            if kind == "false_positive" and not counted_before:
                result.fp_counts = count_false_positives(tx.conn, count_against, at)
            tx.audit(
                actor,
                "case.decision",
                f"case:{case_id}",
                {
                    "item": item_id,
                    "reviewer": reviewer,
                    "kind": kind,
                    "classification": classification,
                    "annotations": list(annotations),
                    "previous": previous,
                    "note": bool(note),
                    "false_positives": {str(k): v for k, v in result.fp_counts.items()},
                },
            )
        return result

    def undo(
        self,
        item_id: int,
        *,
        reviewer: str,
        since: datetime,
        at: datetime,
        count_against: Sequence[int],
        actor: str,
    ) -> UndoResult:
        """Take back the item's latest decision, when ``reviewer`` made it at or after
        ``since`` (the undo grace): the row goes (the audit log keeps it, as
        ``case.decision`` and ``case.decision_undone``), the item's status follows the
        decision before it, and a false positive that was counted is uncounted."""
        with self._db.transaction(refresh=False) as tx:
            case_id = case_of_item(tx.conn, item_id)
            if case_id is None:
                raise NotFoundError(f"no case item {item_id}", hint="see `amparo cases show`")
            latest = latest_decisions(tx.conn, [item_id]).get(item_id)
            if latest is None:
                raise NotFoundError(
                    f"item {item_id} has no decision to undo", hint="it waits for review"
                )
            if latest.reviewer != reviewer:
                raise ConflictError(
                    f"the latest decision on item {item_id} was made by {latest.reviewer}",
                    hint="only the reviewer who made a decision may undo it; decide again",
                )
            if latest.at < as_utc(since):
                raise ConflictError(
                    f"the decision on item {item_id} is past its undo grace period",
                    hint="decide again instead (the latest decision counts)",
                )
            tx.conn.execute(delete(decision_t).where(decision_t.c.id == latest.id))
            before = latest_decisions(tx.conn, [item_id]).get(item_id)
            restored = before.kind if before is not None else None
            status = (
                "pending"
                if restored is None
                else "escalated"
                if restored == "escalate"
                else "decided"
            )
            tx.conn.execute(update(item_t).where(item_t.c.id == item_id).values(status=status))
            settle_case(tx.conn, case_id, at)
            result = UndoResult(case_id=case_id, undone=latest, restored=restored)
            if latest.kind == "false_positive" and not has_false_positive(tx.conn, item_id):
                result.fp_uncounted = uncount_false_positives(tx.conn, count_against)
            tx.audit(
                actor,
                "case.decision_undone",
                f"case:{case_id}",
                {
                    "item": item_id,
                    "reviewer": reviewer,
                    "kind": latest.kind,
                    "classification": latest.classification,
                    "decided_at": latest.at.isoformat(),
                    "restored": restored,
                    "false_positives_uncounted": result.fp_uncounted,
                },
            )
        return result

    def false_positives_due(self, cutoff: datetime) -> list[tuple[int, int]]:
        """``(item id, evidence id)`` of items whose latest decision is a false positive made
        at or before ``cutoff`` and whose preserved copy is still held (and not on legal
        hold): copies whose undo grace has passed, to be discarded."""
        newest = (
            select(decision_t.c.item_id, func.max(decision_t.c.id).label("last"))
            .group_by(decision_t.c.item_id)
            .subquery()
        )
        query = (
            select(item_t.c.id, item_t.c.evidence_id)
            .join(newest, newest.c.item_id == item_t.c.id)
            .join(decision_t, decision_t.c.id == newest.c.last)
            .join(evidence_t, evidence_t.c.id == item_t.c.evidence_id)
            .where(
                item_t.c.status == "decided",
                decision_t.c.kind == "false_positive",
                decision_t.c.at <= cutoff,
                evidence_t.c.purged_at.is_(None),
                evidence_t.c.legal_hold.is_(False),
            )
            .order_by(item_t.c.id)
        )
        with self._db.reading() as conn:
            return [(int(r.id), int(r.evidence_id)) for r in conn.execute(query)]
