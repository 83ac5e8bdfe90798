"""The quarantine of malformed records and pages, and the outbox of opinions sent back to a
collaboration's source (part of :class:`amparo.store.exchanges.ExchangeRepository`; tables
``exchange_quarantine`` and ``exchange_opinions``).

Quarantined items are retried by the fetch runner; queued opinions are claimed one row at a
time by a conditional update, so two deliverers never send one twice.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, func, select, update

from amparo.clock import as_utc
from amparo.exchanges.model import QuarantinedItem
from amparo.store.exchange_records import CHUNK, dialect_insert
from amparo.store.models_exchanges import ExchangeOpinionRow, ExchangeQuarantineRow
from amparo.store.uow import Database

_quar = cast(Table, ExchangeQuarantineRow.__table__)
_opinion = cast(Table, ExchangeOpinionRow.__table__)


@dataclass(frozen=True)
class QueuedOpinion:
    """An outbox row claimed for delivery."""

    id: int
    collab_id: int
    record_id: str
    signal_type: str
    signal: str
    verdict: str
    reason: str | None
    reviewer: str | None
    decided_at: datetime
    attempts: int


class ExchangeOutbox:
    """The quarantine and opinions part of the exchanges repository. Every write joins an
    open unit of work."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- quarantine -------------------------------------------------------------------------

    def quarantine(
        self,
        collab_id: int,
        *,
        reason: str,
        raw: str,
        record_id: str | None,
        retry: dict[str, Any] | None,
        now: datetime,
    ) -> None:
        """Keep a malformed record or page; the same record (or page) seen malformed again
        counts one more attempt on its open row instead of a new row."""
        retry_json = json.dumps(retry, sort_keys=True) if retry is not None else None
        with self.db.transaction(refresh=False) as tx:
            same = (
                _quar.c.record_id == record_id
                if record_id is not None
                else and_(
                    _quar.c.record_id.is_(None),
                    _quar.c.retry == retry_json
                    if retry_json is not None
                    else _quar.c.retry.is_(None),
                    _quar.c.reason == reason,
                )
            )
            existing = tx.conn.execute(
                select(_quar.c.id)
                .where(_quar.c.collab_id == collab_id, _quar.c.resolved_at.is_(None), same)
                .limit(1)
            ).first()
            if existing is not None:
                tx.conn.execute(
                    update(_quar)
                    .where(_quar.c.id == existing.id)
                    .values(
                        reason=reason,
                        raw=raw,
                        retry=retry_json,
                        last_tried=now,
                        attempts=_quar.c.attempts + 1,
                    )
                )
                return
            tx.conn.execute(
                _quar.insert().values(
                    collab_id=collab_id,
                    record_id=record_id,
                    reason=reason,
                    raw=raw,
                    retry=retry_json,
                    first_seen=now,
                    last_tried=now,
                    attempts=1,
                )
            )

    def resolve_records(self, collab_id: int, record_ids: Iterable[str], now: datetime) -> int:
        """Resolve the open quarantine rows of records a valid update has now arrived for."""
        ids = sorted(set(record_ids))
        resolved = 0
        with self.db.transaction(refresh=False) as tx:
            for start in range(0, len(ids), CHUNK):
                result = tx.conn.execute(
                    update(_quar)
                    .where(
                        _quar.c.collab_id == collab_id,
                        _quar.c.resolved_at.is_(None),
                        _quar.c.record_id.in_(ids[start : start + CHUNK]),
                    )
                    .values(resolved_at=now)
                )
                resolved += int(result.rowcount or 0)
        return resolved

    def due_retries(
        self, collab_id: int, tried_before: datetime, *, limit: int = 100
    ) -> builtins.list[tuple[int, dict[str, Any]]]:
        """Open, refetchable quarantine rows last tried before ``tried_before``."""
        with self.db.reading() as conn:
            rows = conn.execute(
                select(_quar.c.id, _quar.c.retry)
                .where(
                    _quar.c.collab_id == collab_id,
                    _quar.c.resolved_at.is_(None),
                    _quar.c.retry.is_not(None),
                    _quar.c.last_tried <= tried_before,
                )
                .order_by(_quar.c.id)
                .limit(limit)
            ).all()
        return [(int(r.id), json.loads(r.retry)) for r in rows]

    def retried(
        self, quarantine_id: int, now: datetime, *, resolved: bool, reason: str | None = None
    ) -> None:
        """A quarantined item was tried again: resolved, or still failing (``reason``)."""
        values: dict[str, Any] = {"last_tried": now, "attempts": _quar.c.attempts + 1}
        if resolved:
            values["resolved_at"] = now
        if reason is not None:
            values["reason"] = reason
        with self.db.transaction(refresh=False) as tx:
            tx.conn.execute(update(_quar).where(_quar.c.id == quarantine_id).values(**values))

    def quarantined(
        self, collab_id: int, name: str, *, limit: int = 100, include_resolved: bool = False
    ) -> builtins.list[QuarantinedItem]:
        query = select(_quar).where(_quar.c.collab_id == collab_id)
        if not include_resolved:
            query = query.where(_quar.c.resolved_at.is_(None))
        with self.db.reading() as conn:
            rows = conn.execute(query.order_by(_quar.c.id.desc()).limit(limit)).all()
        return [
            QuarantinedItem(
                id=int(r.id),
                collaboration=name,
                reason=r.reason,
                raw=r.raw,
                record_id=r.record_id,
                first_seen=as_utc(r.first_seen),
                last_tried=as_utc(r.last_tried),
                attempts=int(r.attempts),
                resolved=r.resolved_at is not None,
            )
            for r in rows
        ]

    def quarantined_count(self, collab_id: int) -> int:
        with self.db.reading() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(_quar)
                    .where(_quar.c.collab_id == collab_id, _quar.c.resolved_at.is_(None))
                ).scalar_one()
            )

    # -- opinions ---------------------------------------------------------------------------

    def queue_opinion(
        self,
        *,
        collab_id: int,
        record_id: str,
        signal_type: str,
        signal: str,
        verdict: str,
        reason: str | None,
        reviewer: str | None,
        item_id: int,
        decided_at: datetime,
        due: datetime,
    ) -> bool:
        """Queue one opinion; False when the same (record, item, verdict) is queued or sent
        already (a repeated decision does not send twice)."""
        with self.db.transaction(refresh=False) as tx:
            stmt = (
                dialect_insert(tx.conn, _opinion)
                .values(
                    collab_id=collab_id,
                    record_id=record_id,
                    signal_type=signal_type,
                    signal=signal,
                    verdict=verdict,
                    reason=reason,
                    reviewer=reviewer,
                    item_id=item_id,
                    decided_at=decided_at,
                    state="queued",
                    attempts=0,
                    next_attempt_at=due,
                )
                .on_conflict_do_nothing(
                    index_elements=[
                        _opinion.c.collab_id,
                        _opinion.c.record_id,
                        _opinion.c.item_id,
                        _opinion.c.verdict,
                    ]
                )
                # rowcount is not reliable for DO NOTHING on every driver; RETURNING is.
                .returning(_opinion.c.id)
            )
            return tx.conn.execute(stmt).first() is not None

    def claim_opinions(
        self, now: datetime, hold_until: datetime, *, limit: int
    ) -> builtins.list[QueuedOpinion]:
        """Claim due queued opinions: each row is taken by one conditional update (pushing
        its next attempt to ``hold_until``), so two deliverers never send one twice."""
        with self.db.reading() as conn:
            candidates = conn.execute(
                select(_opinion)
                .where(_opinion.c.state == "queued", _opinion.c.next_attempt_at <= now)
                .order_by(_opinion.c.next_attempt_at, _opinion.c.id)
                .limit(limit)
            ).all()
        claimed: builtins.list[QueuedOpinion] = []
        for r in candidates:
            with self.db.transaction(refresh=False) as tx:
                got = tx.conn.execute(
                    update(_opinion)
                    .where(
                        _opinion.c.id == r.id,
                        _opinion.c.state == "queued",
                        _opinion.c.next_attempt_at <= now,
                    )
                    .values(next_attempt_at=hold_until)
                ).rowcount
            if got:
                claimed.append(
                    QueuedOpinion(
                        id=int(r.id),
                        collab_id=int(r.collab_id),
                        record_id=r.record_id,
                        signal_type=r.signal_type,
                        signal=r.signal,
                        verdict=r.verdict,
                        reason=r.reason,
                        reviewer=r.reviewer,
                        decided_at=as_utc(r.decided_at),
                        attempts=int(r.attempts),
                    )
                )
        return claimed

    def opinion_sent(self, opinion_id: int, now: datetime) -> None:
        with self.db.transaction(refresh=False) as tx:
            tx.conn.execute(
                update(_opinion)
                .where(_opinion.c.id == opinion_id)
                .values(
                    state="sent",
                    sent_at=now,
                    last_error=None,
                    attempts=_opinion.c.attempts + 1,
                )
            )

    def opinion_failed(self, opinion_id: int, error: str, next_attempt_at: datetime | None) -> None:
        """A delivery failed: retry at ``next_attempt_at``, or give up (None: ``failed``)."""
        values: dict[str, Any] = {
            "attempts": _opinion.c.attempts + 1,
            "last_error": error[:2000],
        }
        if next_attempt_at is None:
            values["state"] = "failed"
        else:
            values["next_attempt_at"] = next_attempt_at
        with self.db.transaction(refresh=False) as tx:
            tx.conn.execute(update(_opinion).where(_opinion.c.id == opinion_id).values(**values))

    def opinion_counts(self, collab_id: int) -> dict[str, int]:
        """Opinions of a collaboration by state."""
        with self.db.reading() as conn:
            rows = conn.execute(
                select(_opinion.c.state, func.count())
                .where(_opinion.c.collab_id == collab_id)
                .group_by(_opinion.c.state)
            ).all()
        return {str(state): int(n) for state, n in rows}
