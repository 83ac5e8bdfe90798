"""The review tables, the one mapping from their rows to the domain types of
:mod:`amparo.review.model`, and the queries several review repositories share."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select, update

from amparo.clock import as_utc
from amparo.review.model import CaseItem, CaseView, Decision, match_of
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

case_t = cast(Table, CaseRow.__table__)
item_t = cast(Table, CaseItemRow.__table__)
decision_t = cast(Table, DecisionRow.__table__)
reveal_t = cast(Table, RevealRow.__table__)
session_t = cast(Table, ReviewSessionRow.__table__)
entry_review_t = cast(Table, EntryReviewRow.__table__)
entry_t = cast(Table, EntryRow.__table__)
bank_t = cast(Table, BankRow.__table__)
evidence_t = cast(Table, EvidenceRow.__table__)


def decision_of(r: Any) -> Decision:
    return Decision(
        kind=r.kind,
        reviewer=r.reviewer,
        at=as_utc(r.at),
        classification=r.classification,
        annotations=tuple(json.loads(r.annotations or "[]")),
        note=r.note,
        id=int(r.id),
    )


def item_of(r: Any, decision: Decision | None) -> CaseItem:
    return CaseItem(
        id=int(r.id),
        case_id=int(r.case_id),
        sha256=r.sha256,
        md5=r.md5,
        size=int(r.size) if r.size is not None else None,
        media_kind=r.media_kind,
        file_name=r.file_name,
        source=json.loads(r.source or "{}"),
        matches=tuple(match_of(m) for m in json.loads(r.matches or "[]")),
        evidence_id=int(r.evidence_id) if r.evidence_id is not None else None,
        first_seen=as_utc(r.first_seen),
        last_seen=as_utc(r.last_seen),
        sightings=int(r.sightings),
        viewed=bool(r.viewed),
        decision=decision,
        status=r.status,
        priority=int(r.priority),
        mime=r.mime,
    )


def case_of(r: Any, items: Sequence[CaseItem]) -> CaseView:
    return CaseView(
        id=int(r.id),
        group=r.group_key,
        status=r.status,
        priority=int(r.priority),
        opened_at=as_utc(r.opened_at),
        updated_at=as_utc(r.updated_at),
        items=tuple(items),
        rule=r.rule,
    )


def latest_decisions(conn: Connection, item_ids: Sequence[int]) -> dict[int, Decision]:
    """Item id -> its latest decision, for the items that have one."""
    out: dict[int, Decision] = {}
    for start in range(0, len(item_ids), 500):
        part = list(item_ids[start : start + 500])
        newest = (
            select(func.max(decision_t.c.id))
            .where(decision_t.c.item_id.in_(part))
            .group_by(decision_t.c.item_id)
        )
        for r in conn.execute(select(decision_t).where(decision_t.c.id.in_(newest))):
            out[int(r.item_id)] = decision_of(r)
    return out


def has_false_positive(conn: Connection, item_id: int) -> bool:
    """Whether any decision on the item called it a false positive (an item counts against
    its entries once, however often it is called one)."""
    found = conn.execute(
        select(decision_t.c.id)
        .where(decision_t.c.item_id == item_id, decision_t.c.kind == "false_positive")
        .limit(1)
    ).first()
    return found is not None


def settle_case(conn: Connection, case_id: int, at: datetime) -> None:
    """Recompute a case's status and priority from its items."""
    rows = conn.execute(
        select(item_t.c.status, item_t.c.priority).where(item_t.c.case_id == case_id)
    ).all()
    statuses = {r.status for r in rows}
    status = (
        "open" if "pending" in statuses else "escalated" if "escalated" in statuses else "decided"
    )
    waiting = [r.priority for r in rows if r.status != "decided"]
    priority = max(waiting or [r.priority for r in rows] or [0])
    conn.execute(
        update(case_t)
        .where(case_t.c.id == case_id)
        .values(status=status, priority=priority, updated_at=at)
    )


def case_of_item(conn: Connection, item_id: int) -> int | None:
    """The case holding an item (None: no such item)."""
    found = conn.execute(select(item_t.c.case_id).where(item_t.c.id == item_id)).scalar()
    return None if found is None else int(found)
