"""Storage of the review work: cases and items, decisions, reveals, reviewer web sessions and
false-positive counts of bank entries. ``amparo.review`` holds the rules; this module the SQL.

Every change records its audit entry in the same transaction. Nothing here stores media.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, func, insert, select, update

from amparo.clock import as_utc
from amparo.errors import ConflictError, NotFoundError
from amparo.store import audit as audit_chain
from amparo.store.base import Store
from amparo.store.models import BankRow, EntryRow
from amparo.store.models_evidence import EvidenceRow
from amparo.store.models_review import (
    CaseItemRow,
    CaseRow,
    DecisionRow,
    EntryReviewRow,
    RevealRow,
    ReviewSessionRow,
)

_case = cast(Table, CaseRow.__table__)
_item = cast(Table, CaseItemRow.__table__)
_decision = cast(Table, DecisionRow.__table__)
_reveal = cast(Table, RevealRow.__table__)
_session = cast(Table, ReviewSessionRow.__table__)
_entry_review = cast(Table, EntryReviewRow.__table__)
_entry = cast(Table, EntryRow.__table__)
_bank = cast(Table, BankRow.__table__)
_evidence = cast(Table, EvidenceRow.__table__)

OPEN_STATUSES = ("open", "escalated")
"""Case statuses to which new finds are added."""

MatchList = list[dict[str, Any]]
Merge = Callable[[MatchList, MatchList], tuple[MatchList, int]]
"""``(existing matches, new matches) -> (merged matches, item priority)``."""


@dataclass(frozen=True)
class NewItem:
    """A sighting of content, as the review layer hands it to the store."""

    sha256: str
    md5: str | None
    size: int | None
    media_kind: str | None
    mime: str | None
    file_name: str | None
    source: dict[str, Any]
    matches: MatchList
    evidence_id: int | None
    at: datetime


@dataclass(frozen=True)
class StoredDecision:
    id: int
    item_id: int
    kind: str
    classification: str | None
    annotations: tuple[str, ...]
    note: str | None
    reviewer: str
    at: datetime


@dataclass(frozen=True)
class StoredItem:
    id: int
    case_id: int
    sha256: str
    md5: str | None
    size: int | None
    media_kind: str | None
    mime: str | None
    file_name: str | None
    source: dict[str, Any]
    matches: MatchList
    evidence_id: int | None
    priority: int
    status: str
    first_seen: datetime
    last_seen: datetime
    sightings: int
    viewed: bool
    decision: StoredDecision | None


@dataclass(frozen=True)
class StoredCase:
    id: int
    group_key: str
    status: str
    priority: int
    rule: str | None
    opened_by: str
    opened_at: datetime
    updated_at: datetime
    items: tuple[StoredItem, ...] = ()


@dataclass(frozen=True)
class Opened:
    case_id: int
    item_id: int
    outcome: str
    """``opened`` (a new case), ``added`` (a new item in an open case) or ``extended`` (one
    more sighting of content an open case holds)."""


@dataclass(frozen=True)
class StoredSession:
    token_hash: str
    key_id: int
    key_name: str
    csrf: str
    created_at: datetime
    expires_at: datetime
    last_active_at: datetime
    streak_started_at: datetime


@dataclass(frozen=True)
class DisabledEntry:
    """A bank entry disabled after repeated false positives, waiting for a curator."""

    entry_id: int
    bank: str
    signal_type: str
    category: str | None
    source_id: str | None
    false_positives: int
    disabled_at: datetime


@dataclass
class DecisionResult:
    case_id: int
    previous: str | None
    """The item's decision kind before this one (None: undecided)."""
    fp_counts: dict[int, int] = field(default_factory=dict)
    """Entry id -> false positives counted against it, when this decision counted them."""


@dataclass
class UndoResult:
    case_id: int
    undone: StoredDecision
    """The decision taken back."""
    restored: str | None
    """The item's decision kind now (None: it waits for review again)."""
    fp_uncounted: list[int] = field(default_factory=list)
    """Entry ids whose false-positive count went down by one."""


class ReviewStore:
    """The review tables of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._db = store.db

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            yield conn

    # -- cases and items --------------------------------------------------------------------

    def open_or_extend(
        self, new: NewItem, *, group_key: str | None, rule: str | None, actor: str, merge: Merge
    ) -> Opened:
        """Add a sighting: to the open case holding the same content, else to the open case
        of its source group, else to a new case (see ``amparo.review.cases``).

        Serialised with other audited writers (``audit.hold``), so two processes reporting
        the same new content at once make one case, not two."""
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            audit_chain.hold(conn)
            held = conn.execute(
                select(_item.c.id, _item.c.case_id, _item.c.matches, _item.c.evidence_id)
                .join(_case, _case.c.id == _item.c.case_id)
                .where(_item.c.sha256 == new.sha256, _case.c.status.in_(OPEN_STATUSES))
                .order_by(_case.c.opened_at)
                .limit(1)
            ).first()
            if held is not None:
                merged, priority = merge(json.loads(held.matches), new.matches)
                values: dict[str, Any] = {
                    "matches": json.dumps(merged),
                    "priority": priority,
                    "last_seen": new.at,
                    "sightings": _item.c.sightings + 1,
                }
                if held.evidence_id is None and new.evidence_id is not None:
                    values["evidence_id"] = new.evidence_id
                conn.execute(update(_item).where(_item.c.id == held.id).values(**values))
                opened = Opened(int(held.case_id), int(held.id), "extended")
            else:
                merged, priority = merge([], new.matches)
                case_id = None
                if group_key is not None:
                    case_id = conn.execute(
                        select(_case.c.id)
                        .where(_case.c.group_key == group_key, _case.c.status.in_(OPEN_STATUSES))
                        .order_by(_case.c.opened_at)
                        .limit(1)
                    ).scalar()
                outcome = "added"
                if case_id is None:
                    outcome = "opened"
                    case_id = conn.execute(
                        insert(_case)
                        .values(
                            group_key=group_key or f"content:{new.sha256}",
                            status="open",
                            priority=priority,
                            rule=rule,
                            opened_by=actor,
                            opened_at=new.at,
                            updated_at=new.at,
                        )
                        .returning(_case.c.id)
                    ).scalar_one()
                item_id = conn.execute(
                    insert(_item)
                    .values(
                        case_id=case_id,
                        sha256=new.sha256,
                        md5=new.md5,
                        size=new.size,
                        media_kind=new.media_kind,
                        mime=new.mime,
                        file_name=new.file_name,
                        source=json.dumps(new.source, default=str),
                        matches=json.dumps(merged),
                        evidence_id=new.evidence_id,
                        priority=priority,
                        status="pending",
                        first_seen=new.at,
                        last_seen=new.at,
                        sightings=1,
                        viewed=False,
                    )
                    .returning(_item.c.id)
                ).scalar_one()
                opened = Opened(int(case_id), int(item_id), outcome)
            self._settle_case(conn, opened.case_id, new.at)
            tx.audit(
                actor,
                f"case.{opened.outcome}",
                f"case:{opened.case_id}",
                {
                    "item": opened.item_id,
                    "sha256": new.sha256,
                    "matches": [_match_ref(m) for m in new.matches],
                    "rule": rule,
                },
            )
        return opened

    def _settle_case(self, conn: Connection, case_id: int, at: datetime) -> None:
        """Recompute a case's status and priority from its items."""
        rows = conn.execute(
            select(_item.c.status, _item.c.priority).where(_item.c.case_id == case_id)
        ).all()
        statuses = {r.status for r in rows}
        status = (
            "open"
            if "pending" in statuses
            else "escalated"
            if "escalated" in statuses
            else "decided"
        )
        waiting = [r.priority for r in rows if r.status != "decided"]
        priority = max(waiting or [r.priority for r in rows] or [0])
        conn.execute(
            update(_case)
            .where(_case.c.id == case_id)
            .values(status=status, priority=priority, updated_at=at)
        )

    def evidence_still_needed(
        self, evidence_id: int, *, except_item: int, fp_before: datetime | None = None
    ) -> bool:
        """Whether an item other than ``except_item`` relies on the preserved copy
        ``evidence_id``: it waits for review, is escalated, or was confirmed, or (with
        ``fp_before``) was decided a false positive after ``fp_before``, still undoable."""
        with self._db.reading() as conn:
            others = conn.execute(
                select(_item.c.id, _item.c.status).where(
                    _item.c.evidence_id == evidence_id, _item.c.id != except_item
                )
            ).all()
            if any(status != "decided" for _, status in others):
                return True
            latest = self._latest_decisions(conn, [int(item_id) for item_id, _ in others])
        return any(
            (d := latest.get(int(item_id))) is None
            or d.kind != "false_positive"
            or (fp_before is not None and as_utc(d.at) > as_utc(fp_before))
            for item_id, _ in others
        )

    def case(self, case_id: int) -> StoredCase | None:
        with self._db.reading() as conn:
            row = conn.execute(select(_case).where(_case.c.id == case_id)).first()
            if row is None:
                return None
            items = self._items(conn, [case_id])
        return _stored_case(row, items.get(case_id, []))

    def queue(
        self,
        *,
        statuses: Sequence[str],
        limit: int,
        offset: int = 0,
    ) -> list[StoredCase]:
        """Cases in priority order: highest priority first, then the longest waiting."""
        query = (
            select(_case)
            .where(_case.c.status.in_(list(statuses)))
            .order_by(_case.c.priority.desc(), _case.c.opened_at, _case.c.id)
            .limit(limit)
            .offset(offset)
        )
        with self._db.reading() as conn:
            rows = conn.execute(query).all()
            items = self._items(conn, [int(r.id) for r in rows])
        return [_stored_case(r, items.get(int(r.id), [])) for r in rows]

    def count(self, statuses: Sequence[str]) -> int:
        with self._db.reading() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(_case)
                    .where(_case.c.status.in_(list(statuses)))
                ).scalar_one()
            )

    def _items(self, conn: Connection, case_ids: Sequence[int]) -> dict[int, list[StoredItem]]:
        out: dict[int, list[StoredItem]] = {}
        if not case_ids:
            return out
        rows = conn.execute(
            select(_item)
            .where(_item.c.case_id.in_(list(case_ids)))
            .order_by(_item.c.priority.desc(), _item.c.id)
        ).all()
        latest = self._latest_decisions(conn, [int(r.id) for r in rows])
        for r in rows:
            out.setdefault(int(r.case_id), []).append(_stored_item(r, latest.get(int(r.id))))
        return out

    @staticmethod
    def _latest_decisions(conn: Connection, item_ids: Sequence[int]) -> dict[int, StoredDecision]:
        out: dict[int, StoredDecision] = {}
        for start in range(0, len(item_ids), 500):
            part = list(item_ids[start : start + 500])
            newest = (
                select(func.max(_decision.c.id))
                .where(_decision.c.item_id.in_(part))
                .group_by(_decision.c.item_id)
            )
            for r in conn.execute(select(_decision).where(_decision.c.id.in_(newest))):
                out[int(r.item_id)] = _stored_decision(r)
        return out

    def item(self, item_id: int) -> StoredItem | None:
        with self._db.reading() as conn:
            row = conn.execute(select(_item).where(_item.c.id == item_id)).first()
            if row is None:
                return None
            latest = self._latest_decisions(conn, [item_id])
        return _stored_item(row, latest.get(item_id))

    def decisions(self, item_id: int) -> list[StoredDecision]:
        """Every decision on an item, oldest first."""
        with self._db.reading() as conn:
            rows = conn.execute(
                select(_decision).where(_decision.c.item_id == item_id).order_by(_decision.c.id)
            ).all()
        return [_stored_decision(r) for r in rows]

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
        ``false_positive`` and the item's previous decision was not, one false positive is
        counted against each entry id of ``count_against``."""
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            case_id = int(
                conn.execute(select(_item.c.case_id).where(_item.c.id == item_id)).scalar_one()
            )
            before = self._latest_decisions(conn, [item_id]).get(item_id)
            previous = before.kind if before is not None else None
            # An item counts against its entries once, however often it is called a false
            # positive (also after a decision in between).
            counted_before = _has_false_positive(conn, item_id)
            conn.execute(
                insert(_decision).values(
                    item_id=item_id,
                    kind=kind,
                    classification=classification,
                    annotations=json.dumps(list(annotations)),
                    note=note,
                    reviewer=reviewer,
                    at=at,
                )
            )
            status = "escalated" if kind == "escalate" else "decided"
            conn.execute(update(_item).where(_item.c.id == item_id).values(status=status))
            self._settle_case(conn, case_id, at)
            result = DecisionResult(case_id=case_id, previous=previous)
            if kind == "false_positive" and not counted_before:
                result.fp_counts = self._count_false_positives(conn, count_against, at)
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
        count_against: Sequence[int],
        actor: str,
    ) -> UndoResult:
        """Take back the item's latest decision, when ``reviewer`` made it at or after
        ``since`` (the undo grace): the row goes (the audit log keeps it, as
        ``case.decision`` and ``case.decision_undone``), the item's status follows the
        decision before it, and a false positive that was counted is uncounted."""
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            row = conn.execute(select(_item.c.case_id).where(_item.c.id == item_id)).first()
            if row is None:
                raise NotFoundError(f"no case item {item_id}", hint="see `amparo cases show`")
            case_id = int(row.case_id)
            latest = self._latest_decisions(conn, [item_id]).get(item_id)
            if latest is None:
                raise NotFoundError(
                    f"item {item_id} has no decision to undo", hint="it waits for review"
                )
            if latest.reviewer != reviewer:
                raise ConflictError(
                    f"the latest decision on item {item_id} was made by {latest.reviewer}",
                    hint="only the reviewer who made a decision may undo it; decide again",
                )
            if as_utc(latest.at) < as_utc(since):
                raise ConflictError(
                    f"the decision on item {item_id} is past its undo grace period",
                    hint="decide again instead (the latest decision counts)",
                )
            conn.execute(delete(_decision).where(_decision.c.id == latest.id))
            before = self._latest_decisions(conn, [item_id]).get(item_id)
            restored = before.kind if before is not None else None
            status = (
                "pending"
                if restored is None
                else "escalated"
                if restored == "escalate"
                else "decided"
            )
            conn.execute(update(_item).where(_item.c.id == item_id).values(status=status))
            at = datetime.now(UTC)
            self._settle_case(conn, case_id, at)
            result = UndoResult(case_id=case_id, undone=latest, restored=restored)
            still_counted = _has_false_positive(conn, item_id)
            if latest.kind == "false_positive" and not still_counted:
                for entry_id in sorted(set(count_against)):
                    changed = conn.execute(
                        update(_entry_review)
                        .where(
                            _entry_review.c.entry_id == entry_id,
                            _entry_review.c.false_positives > 0,
                        )
                        .values(false_positives=_entry_review.c.false_positives - 1)
                    ).rowcount
                    if changed:
                        result.fp_uncounted.append(entry_id)
            tx.audit(
                actor,
                "case.decision_undone",
                f"case:{case_id}",
                {
                    "item": item_id,
                    "reviewer": reviewer,
                    "kind": latest.kind,
                    "classification": latest.classification,
                    "decided_at": as_utc(latest.at).isoformat(),
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
            select(_decision.c.item_id, func.max(_decision.c.id).label("last"))
            .group_by(_decision.c.item_id)
            .subquery()
        )
        query = (
            select(_item.c.id, _item.c.evidence_id)
            .join(newest, newest.c.item_id == _item.c.id)
            .join(_decision, _decision.c.id == newest.c.last)
            .join(_evidence, _evidence.c.id == _item.c.evidence_id)
            .where(
                _item.c.status == "decided",
                _decision.c.kind == "false_positive",
                _decision.c.at <= cutoff,
                _evidence.c.purged_at.is_(None),
                _evidence.c.legal_hold.is_(False),
            )
            .order_by(_item.c.id)
        )
        with self._db.reading() as conn:
            return [(int(r.id), int(r.evidence_id)) for r in conn.execute(query)]

    # -- false positives --------------------------------------------------------------------

    def _count_false_positives(
        self, conn: Connection, entry_ids: Sequence[int], at: datetime
    ) -> dict[int, int]:
        counts: dict[int, int] = {}
        for entry_id in sorted(set(entry_ids)):
            exists = conn.execute(select(_entry.c.id).where(_entry.c.id == entry_id)).first()
            if exists is None:  # deleted with its bank since the match
                continue
            changed = conn.execute(
                update(_entry_review)
                .where(_entry_review.c.entry_id == entry_id)
                .values(
                    false_positives=_entry_review.c.false_positives + 1,
                    last_false_positive_at=at,
                )
            ).rowcount
            if not changed:
                conn.execute(
                    insert(_entry_review).values(
                        entry_id=entry_id, false_positives=1, last_false_positive_at=at
                    )
                )
            counts[entry_id] = int(
                conn.execute(
                    select(_entry_review.c.false_positives).where(
                        _entry_review.c.entry_id == entry_id
                    )
                ).scalar_one()
            )
        return counts

    def false_positive_counts(self, entry_ids: Sequence[int]) -> dict[int, int]:
        with self._db.reading() as conn:
            rows = conn.execute(
                select(_entry_review.c.entry_id, _entry_review.c.false_positives).where(
                    _entry_review.c.entry_id.in_(list(entry_ids))
                )
            ).all()
        return {int(r.entry_id): int(r.false_positives) for r in rows}

    def entries_to_disable(self, entry_ids: Sequence[int], limit: int) -> list[tuple[int, str]]:
        """``(entry id, bank name)`` of the entries with ``limit`` or more false positives
        that are still enabled and not yet marked as disabled pending review."""
        query = (
            select(_entry.c.id, _bank.c.name)
            .join(_bank, _bank.c.id == _entry.c.bank_id)
            .join(_entry_review, _entry_review.c.entry_id == _entry.c.id)
            .where(
                _entry.c.id.in_(list(entry_ids)),
                _entry_review.c.false_positives >= limit,
                _entry_review.c.disabled_at.is_(None),
                _entry.c.removed_at.is_(None),
                _entry.c.enabled.is_(True),
            )
        )
        with self._db.reading() as conn:
            return [(int(r.id), r.name) for r in conn.execute(query)]

    def mark_disabled(
        self,
        entry_id: int,
        at: datetime | None,
        *,
        actor: str,
        details: dict[str, Any] | None = None,
        reset_count: bool = True,
    ) -> None:
        """Mark an entry as disabled pending a curator's look (``at``), or clear the mark and
        (``reset_count``) the count (``at=None``: a curator re-enabled it, or the false
        positive that disabled it was undone)."""
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            values: dict[str, Any] = {"disabled_at": at}
            if at is None and reset_count:
                values["false_positives"] = 0
            conn.execute(
                update(_entry_review).where(_entry_review.c.entry_id == entry_id).values(**values)
            )
            bank = conn.execute(
                select(_bank.c.name)
                .join(_entry, _entry.c.bank_id == _bank.c.id)
                .where(_entry.c.id == entry_id)
            ).scalar()
            action = "entry.disabled_pending_review" if at else "entry.reenabled_after_review"
            tx.audit(actor, action, str(bank or ""), {"entry": entry_id, **(details or {})})

    def disabled_entries(self) -> list[DisabledEntry]:
        query = (
            select(
                _entry.c.id,
                _entry.c.signal_type,
                _entry.c.category,
                _entry.c.source_id,
                _bank.c.name,
                _entry_review.c.false_positives,
                _entry_review.c.disabled_at,
            )
            .join(_entry, _entry.c.id == _entry_review.c.entry_id)
            .join(_bank, _bank.c.id == _entry.c.bank_id)
            .where(_entry_review.c.disabled_at.is_not(None), _entry.c.removed_at.is_(None))
            .order_by(_entry_review.c.disabled_at, _entry.c.id)
        )
        with self._db.reading() as conn:
            return [
                DisabledEntry(
                    entry_id=int(r.id),
                    bank=r.name,
                    signal_type=r.signal_type,
                    category=r.category,
                    source_id=r.source_id,
                    false_positives=int(r.false_positives),
                    disabled_at=as_utc(r.disabled_at),
                )
                for r in conn.execute(query)
            ]

    # -- reveals and exposure ---------------------------------------------------------------

    def reveal(
        self,
        item_id: int,
        reviewer: str,
        at: datetime,
        *,
        since: datetime,
        actor: str,
        limit: int | None = None,
    ) -> int | None:
        """Record a reveal (and mark the item viewed); return the number of distinct items
        the reviewer has revealed since ``since``, this one included.

        With a ``limit``: a new item past ``limit`` distinct items since ``since`` is refused
        (``None``, nothing recorded), checked in the same serialised transaction as the write
        so concurrent reveals cannot pass the limit together."""
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            audit_chain.hold(conn)
            seen = self._revealed_items(conn, reviewer, since)
            if limit is not None and item_id not in seen and len(seen) >= limit:
                return None
            case_id = conn.execute(select(_item.c.case_id).where(_item.c.id == item_id)).scalar()
            conn.execute(insert(_reveal).values(item_id=item_id, reviewer=reviewer, at=at))
            conn.execute(update(_item).where(_item.c.id == item_id).values(viewed=True))
            count = len(seen | {item_id}) if at >= since else len(seen)
            tx.audit(
                actor,
                "case.reveal",
                f"case:{case_id}",
                {"item": item_id, "reviewer": reviewer, "revealed_today": count},
            )
        return count

    def revealed_items(self, reviewer: str, since: datetime) -> set[int]:
        """Ids of the items the reviewer revealed since ``since``."""
        with self._db.reading() as conn:
            return self._revealed_items(conn, reviewer, since)

    @staticmethod
    def _revealed_items(conn: Connection, reviewer: str, since: datetime) -> set[int]:
        rows = conn.execute(
            select(_reveal.c.item_id)
            .where(_reveal.c.reviewer == reviewer, _reveal.c.at >= since)
            .distinct()
        )
        return {int(r.item_id) for r in rows}

    def last_reveal(self, item_id: int, reviewer: str) -> datetime | None:
        with self._db.reading() as conn:
            found = conn.execute(
                select(func.max(_reveal.c.at)).where(
                    _reveal.c.item_id == item_id, _reveal.c.reviewer == reviewer
                )
            ).scalar()
        return as_utc(found) if found is not None else None

    # -- web sessions -----------------------------------------------------------------------

    def create_session(self, session: StoredSession) -> None:
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            conn.execute(delete(_session).where(_session.c.expires_at < session.created_at))
            conn.execute(insert(_session).values(**session.__dict__))

    def session(self, token_hash: str) -> StoredSession | None:
        with self._db.reading() as conn:
            row = conn.execute(select(_session).where(_session.c.token_hash == token_hash)).first()
        if row is None:
            return None
        return StoredSession(
            token_hash=row.token_hash,
            key_id=int(row.key_id),
            key_name=row.key_name,
            csrf=row.csrf,
            created_at=as_utc(row.created_at),
            expires_at=as_utc(row.expires_at),
            last_active_at=as_utc(row.last_active_at),
            streak_started_at=as_utc(row.streak_started_at),
        )

    def touch_session(self, token_hash: str, *, active: datetime, streak_started: datetime) -> None:
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            conn.execute(
                update(_session)
                .where(_session.c.token_hash == token_hash)
                .values(last_active_at=active, streak_started_at=streak_started)
            )

    def delete_session(self, token_hash: str) -> None:
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            conn.execute(delete(_session).where(_session.c.token_hash == token_hash))


def _match_ref(m: dict[str, Any]) -> dict[str, Any]:
    """What the audit log says about a match: which entry, how close; never a hash."""
    return {k: m.get(k) for k in ("bank", "entry_id", "signal_type", "distance", "category")}


def _stored_decision(r: Any) -> StoredDecision:
    return StoredDecision(
        id=int(r.id),
        item_id=int(r.item_id),
        kind=r.kind,
        classification=r.classification,
        annotations=tuple(json.loads(r.annotations or "[]")),
        note=r.note,
        reviewer=r.reviewer,
        at=as_utc(r.at),
    )


def _stored_item(r: Any, decision: StoredDecision | None) -> StoredItem:
    return StoredItem(
        id=int(r.id),
        case_id=int(r.case_id),
        sha256=r.sha256,
        md5=r.md5,
        size=int(r.size) if r.size is not None else None,
        media_kind=r.media_kind,
        mime=r.mime,
        file_name=r.file_name,
        source=json.loads(r.source or "{}"),
        matches=json.loads(r.matches or "[]"),
        evidence_id=int(r.evidence_id) if r.evidence_id is not None else None,
        priority=int(r.priority),
        status=r.status,
        first_seen=as_utc(r.first_seen),
        last_seen=as_utc(r.last_seen),
        sightings=int(r.sightings),
        viewed=bool(r.viewed),
        decision=decision,
    )


def _stored_case(r: Any, items: list[StoredItem]) -> StoredCase:
    return StoredCase(
        id=int(r.id),
        group_key=r.group_key,
        status=r.status,
        priority=int(r.priority),
        rule=r.rule,
        opened_by=r.opened_by,
        opened_at=as_utc(r.opened_at),
        updated_at=as_utc(r.updated_at),
        items=tuple(items),
    )


def _has_false_positive(conn: Connection, item_id: int) -> bool:
    """Whether any decision on the item called it a false positive (an item counts against
    its entries once, however often it is called one)."""
    found = conn.execute(
        select(_decision.c.id)
        .where(_decision.c.item_id == item_id, _decision.c.kind == "false_positive")
        .limit(1)
    ).first()
    return found is not None
