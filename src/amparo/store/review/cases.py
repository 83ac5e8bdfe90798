"""Cases and their items: a sighting opens or extends one, reads return
:class:`~amparo.review.model.CaseView` and :class:`~amparo.review.model.CaseItem`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from amparo.clock import as_utc
from amparo.review.model import OPEN_STATUSES, CaseItem, CaseView, Merge, NewItem, Opened
from amparo.store.review.rows import (
    case_of,
    case_t,
    item_of,
    item_t,
    latest_decisions,
    settle_case,
)
from amparo.store.uow import Database


class CaseRepository:
    """The ``cases`` and ``case_items`` tables. Every change records its audit entry in the
    same transaction. Nothing here stores media."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def open_or_extend(
        self, new: NewItem, *, group_key: str | None, rule: str | None, actor: str, merge: Merge
    ) -> Opened:
        """Add a sighting: to the open case holding the same content, else to the open case
        of its source group, else to a new case (see ``amparo.review.cases``).

        Serialised with other audited writers (``audit.hold``), so two processes reporting
        the same new content at once make one case, not two."""
        with self._db.transaction(refresh=False) as tx:
            tx.hold_audit()
            held = tx.conn.execute(
                select(item_t.c.id, item_t.c.case_id, item_t.c.matches, item_t.c.evidence_id)
                .join(case_t, case_t.c.id == item_t.c.case_id)
                .where(item_t.c.sha256 == new.sha256, case_t.c.status.in_(OPEN_STATUSES))
                .order_by(case_t.c.opened_at)
                .limit(1)
            ).first()
            if held is not None:
                opened = self._extend(tx.conn, held, new, merge)
            else:
                opened = self._add(
                    tx.conn, new, group_key=group_key, rule=rule, actor=actor, merge=merge
                )
            settle_case(tx.conn, opened.case_id, new.at)
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

    @staticmethod
    def _extend(conn: Connection, held: Any, new: NewItem, merge: Merge) -> Opened:
        merged, priority = merge(json.loads(held.matches), new.matches)
        values: dict[str, Any] = {
            "matches": json.dumps(merged),
            "priority": priority,
            "last_seen": new.at,
            "sightings": item_t.c.sightings + 1,
        }
        if held.evidence_id is None and new.evidence_id is not None:
            values["evidence_id"] = new.evidence_id
        conn.execute(update(item_t).where(item_t.c.id == held.id).values(**values))
        return Opened(int(held.case_id), int(held.id), "extended")

    @staticmethod
    def _add(
        conn: Connection,
        new: NewItem,
        *,
        group_key: str | None,
        rule: str | None,
        actor: str,
        merge: Merge,
    ) -> Opened:
        merged, priority = merge([], new.matches)
        case_id = None
        if group_key is not None:
            case_id = conn.execute(
                select(case_t.c.id)
                .where(case_t.c.group_key == group_key, case_t.c.status.in_(OPEN_STATUSES))
                .order_by(case_t.c.opened_at)
                .limit(1)
            ).scalar()
        outcome = "added"
        if case_id is None:
            outcome = "opened"
            case_id = conn.execute(
                insert(case_t)
                .values(
                    group_key=group_key or f"content:{new.sha256}",
                    status="open",
                    priority=priority,
                    rule=rule,
                    opened_by=actor,
                    opened_at=new.at,
                    updated_at=new.at,
                )
                .returning(case_t.c.id)
            ).scalar_one()
        item_id = conn.execute(
            insert(item_t)
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
            .returning(item_t.c.id)
        ).scalar_one()
        return Opened(int(case_id), int(item_id), outcome)

    def evidence_still_needed(
        self, evidence_id: int, *, except_item: int, fp_before: datetime | None = None
    ) -> bool:
        """Whether an item other than ``except_item`` relies on the preserved copy
        ``evidence_id``: it waits for review, is escalated, or was confirmed, or (with
        ``fp_before``) was decided a false positive after ``fp_before``, still undoable."""
        with self._db.reading() as conn:
            others = conn.execute(
                select(item_t.c.id, item_t.c.status).where(
                    item_t.c.evidence_id == evidence_id, item_t.c.id != except_item
                )
            ).all()
            if any(status != "decided" for _, status in others):
                return True
            latest = latest_decisions(conn, [int(item_id) for item_id, _ in others])
        return any(
            (d := latest.get(int(item_id))) is None
            or d.kind != "false_positive"
            or (fp_before is not None and d.at > as_utc(fp_before))
            for item_id, _ in others
        )

    def case(self, case_id: int) -> CaseView | None:
        with self._db.reading() as conn:
            row = conn.execute(select(case_t).where(case_t.c.id == case_id)).first()
            if row is None:
                return None
            items = self._items(conn, [case_id])
        return case_of(row, items.get(case_id, []))

    def queue(self, *, statuses: Sequence[str], limit: int, offset: int = 0) -> list[CaseView]:
        """Cases in priority order: highest priority first, then the longest waiting."""
        query = (
            select(case_t)
            .where(case_t.c.status.in_(list(statuses)))
            .order_by(case_t.c.priority.desc(), case_t.c.opened_at, case_t.c.id)
            .limit(limit)
            .offset(offset)
        )
        with self._db.reading() as conn:
            rows = conn.execute(query).all()
            items = self._items(conn, [int(r.id) for r in rows])
        return [case_of(r, items.get(int(r.id), [])) for r in rows]

    def count(self, statuses: Sequence[str]) -> int:
        with self._db.reading() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(case_t)
                    .where(case_t.c.status.in_(list(statuses)))
                ).scalar_one()
            )

    def item(self, item_id: int) -> CaseItem | None:
        with self._db.reading() as conn:
            row = conn.execute(select(item_t).where(item_t.c.id == item_id)).first()
            if row is None:
                return None
            latest = latest_decisions(conn, [item_id])
        return item_of(row, latest.get(item_id))

    @staticmethod
    def _items(conn: Connection, case_ids: Sequence[int]) -> dict[int, list[CaseItem]]:
        out: dict[int, list[CaseItem]] = {}
        if not case_ids:
            return out
        rows = conn.execute(
            select(item_t)
            .where(item_t.c.case_id.in_(list(case_ids)))
            .order_by(item_t.c.priority.desc(), item_t.c.id)
        ).all()
        latest = latest_decisions(conn, [int(r.id) for r in rows])
        for r in rows:
            out.setdefault(int(r.case_id), []).append(item_of(r, latest.get(int(r.id))))
        return out


def _match_ref(m: dict[str, Any]) -> dict[str, Any]:
    """What the audit log says about a match: which entry, how close; never a hash."""
    return {k: m.get(k) for k in ("bank", "entry_id", "signal_type", "distance", "category")}
