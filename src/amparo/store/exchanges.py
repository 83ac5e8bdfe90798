"""Collaborations, the records they fetched, their quarantine and the opinions outbox (the
exchanges work's repository; tables in ``models_exchanges.py``, migration 0009).

The fetch runner (:mod:`amparo.exchanges.runner`) calls these inside one unit of work per
batch, together with the bank's own writes (``store.banks.add_entries`` /
``remove_entries``) and the batch's checkpoint: a batch lands whole or not at all.

``exchange_records`` is what makes deletions exact: a source names a deletion by its own
record id, and a signal leaves the bank only when no live record of any collaboration
feeding that bank still carries it (a record that changes its hash frees the old one).
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, bindparam, delete, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from amparo.banks.model import EntryRecord
from amparo.clock import as_utc
from amparo.errors import ConflictError, NotFoundError
from amparo.exchanges.model import (
    Collaboration,
    QuarantinedItem,
    Update,
)
from amparo.store.models import BankRow, signal_key
from amparo.store.models_exchanges import (
    CollaborationRow,
    ExchangeOpinionRow,
    ExchangeQuarantineRow,
    ExchangeRecordRow,
)
from amparo.store.uow import Database

_collab = cast(Table, CollaborationRow.__table__)
_record = cast(Table, ExchangeRecordRow.__table__)
_quar = cast(Table, ExchangeQuarantineRow.__table__)
_opinion = cast(Table, ExchangeOpinionRow.__table__)
_bank = cast(Table, BankRow.__table__)

CHUNK = 500
"""Rows per ``IN (...)`` list: under SQLite's bound-parameter limit with room to spare."""

Pair = tuple[str, str]
"""``(signal type, signal)``."""


@dataclass
class CollaborationState:
    """A collaboration with its bank and fetch state, as the runner and status read it."""

    collaboration: Collaboration
    bank_id: int
    checkpoint: dict[str, Any] | None
    generation: int
    full_in_progress: bool
    updated_at: datetime
    last_fetch_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    entries_added: int
    entries_removed: int

    @property
    def id(self) -> int:
        assert self.collaboration.id is not None
        return self.collaboration.id


@dataclass
class RecordChanges:
    """What a batch of updates changed in the records table, for the bank's writes."""

    to_add: dict[Pair, EntryRecord] = field(default_factory=dict)
    """Entries to add or refresh in the bank (new or changed records), by signal."""
    freed: set[Pair] = field(default_factory=set)
    """Signals a record stopped carrying (deleted, withdrawn, or its hash changed): removed
    from the bank if no live record still carries them."""
    upserts: int = 0
    deletions: int = 0
    unchanged: int = 0


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


def fingerprint(update: Update) -> str:
    """What an upsert says, hashed: an unchanged record is not written to the bank again
    (no churn, and an entry a curator disabled is not silently re-enabled)."""
    body = [
        update.signal_type,
        update.signal,
        update.category,
        list(update.tags),
        list(update.source_ids),
        update.provenance.to_json() if update.provenance is not None else None,
    ]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT (both have ``on_conflict_do_update``/``_do_nothing``)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


class ExchangeRepository:
    """Storage of the exchanges context. Every write joins an open unit of work."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- collaborations ---------------------------------------------------------------------

    def create(self, collab: Collaboration, bank_id: int, now: datetime) -> int:
        """Insert a collaboration (in the caller's transaction); its id."""
        try:
            with self.db.transaction(refresh=False) as tx:
                result = tx.conn.execute(
                    _collab.insert().values(
                        name=collab.name,
                        exchange=collab.exchange,
                        bank_id=bank_id,
                        settings=json.dumps(collab.settings, sort_keys=True),
                        credentials=collab.credentials,
                        interval_seconds=int(collab.interval_seconds),
                        enabled=bool(collab.enabled),
                        feedback=bool(collab.feedback),
                        created_at=now,
                        updated_at=now,
                        checkpoint=None,
                        generation=0,
                        full_in_progress=False,
                        entries_added=0,
                        entries_removed=0,
                    )
                )
                key = result.inserted_primary_key
                assert key is not None
                return int(key[0])
        except IntegrityError:
            raise ConflictError(
                f"collaboration {collab.name!r} already exists",
                hint="choose another name, or `amparo exchange remove` the old one first",
            ) from None

    def state(self, name: str) -> CollaborationState:
        with self.db.reading() as conn:
            row = conn.execute(_SELECT_STATE.where(_collab.c.name == name)).first()
        if row is None:
            raise NotFoundError(
                f"no collaboration named {name!r}", hint="see `amparo exchange list`"
            )
        return _state(row)

    def states(self) -> builtins.list[CollaborationState]:
        with self.db.reading() as conn:
            rows = conn.execute(_SELECT_STATE.order_by(_collab.c.name)).all()
        return [_state(r) for r in rows]

    def change(self, collab_id: int, values: dict[str, Any], now: datetime) -> None:
        """Change columns of a collaboration (``settings`` given as a dict)."""
        values = dict(values)
        if "settings" in values:
            values["settings"] = json.dumps(values["settings"], sort_keys=True)
        with self.db.transaction(refresh=False) as tx:
            tx.conn.execute(
                update(_collab).where(_collab.c.id == collab_id).values(updated_at=now, **values)
            )

    def delete(self, collab_id: int) -> None:
        """Delete a collaboration; its records, quarantine and opinions go with it."""
        with self.db.transaction(refresh=False) as tx:
            for table in (_record, _quar, _opinion):
                tx.conn.execute(delete(table).where(table.c.collab_id == collab_id))
            tx.conn.execute(delete(_collab).where(_collab.c.id == collab_id))

    # -- fetch state ------------------------------------------------------------------------

    def save_progress(
        self,
        collab_id: int,
        *,
        generation: int,
        full_in_progress: bool,
        added: int,
        removed: int,
        checkpoint: str | None = None,
    ) -> None:
        """Record a batch's progress in its transaction: the checkpoint to resume from
        (None: keep the stored one), the full-fetch state and the entry counters."""
        values: dict[str, Any] = {
            "generation": generation,
            "full_in_progress": full_in_progress,
            "entries_added": _collab.c.entries_added + added,
            "entries_removed": _collab.c.entries_removed + removed,
        }
        if checkpoint is not None:
            values["checkpoint"] = checkpoint
        with self.db.transaction(refresh=False) as tx:
            tx.conn.execute(update(_collab).where(_collab.c.id == collab_id).values(**values))

    def record_attempt(self, collab_id: int, now: datetime, error: str | None) -> None:
        """A fetch ended: when, and its error (None: success, also the last fetch time)."""
        values: dict[str, Any] = {"last_attempt_at": now, "last_error": error}
        if error is None:
            values["last_fetch_at"] = now
        with self.db.transaction(refresh=False) as tx:
            tx.conn.execute(update(_collab).where(_collab.c.id == collab_id).values(**values))

    # -- records ----------------------------------------------------------------------------

    def apply_updates(
        self, collab_id: int, updates: Sequence[Update], generation: int, now: datetime
    ) -> RecordChanges:
        """Apply valid, ordered updates to the records (in the open transaction); say what
        the bank must add and which signals may have been freed. Updates must carry
        canonical signals (the runner normalises them)."""
        changes = RecordChanges()
        if not updates:
            return changes
        with self.db.transaction(refresh=False) as tx:
            conn = tx.conn
            ids = list(dict.fromkeys(u.record_id for u in updates))
            # record id -> (signal_type, signal, fingerprint, deleted)
            state: dict[str, tuple[str | None, str | None, str | None, bool]] = {}
            for start in range(0, len(ids), CHUNK):
                rows = conn.execute(
                    select(
                        _record.c.record_id,
                        _record.c.signal_type,
                        _record.c.signal,
                        _record.c.fingerprint,
                        _record.c.deleted,
                    ).where(
                        _record.c.collab_id == collab_id,
                        _record.c.record_id.in_(ids[start : start + CHUNK]),
                    )
                )
                for r in rows:
                    state[r.record_id] = (r.signal_type, r.signal, r.fingerprint, bool(r.deleted))
            written: set[str] = set()
            touched: set[str] = set()
            for u in updates:
                current = state.get(u.record_id)
                live = current is not None and not current[3]
                if u.deleted:
                    changes.deletions += 1
                    if current is not None and live:
                        assert current[0] is not None and current[1] is not None
                        changes.freed.add((current[0], current[1]))
                        state[u.record_id] = (current[0], current[1], current[2], True)
                        written.add(u.record_id)
                    continue
                assert u.signal_type is not None and u.signal is not None
                changes.upserts += 1
                fp = fingerprint(u)
                if current is not None and live and current[2] == fp:
                    changes.unchanged += 1
                    touched.add(u.record_id)
                    continue
                if (
                    current is not None
                    and live
                    and (current[0], current[1])
                    != (
                        u.signal_type,
                        u.signal,
                    )
                ):
                    assert current[0] is not None and current[1] is not None
                    changes.freed.add((current[0], current[1]))
                state[u.record_id] = (u.signal_type, u.signal, fp, False)
                written.add(u.record_id)
                changes.to_add[(u.signal_type, signal_key(u.signal))] = EntryRecord(
                    signal_type=u.signal_type,
                    signal=u.signal,
                    category=u.category,
                    tags=list(u.tags),
                    source_id=u.record_id,
                    provenance=u.provenance.to_json() if u.provenance is not None else None,
                )
            rows_out = []
            for rid in written:
                st, sig, fp_, deleted = state[rid]
                rows_out.append(
                    {
                        "collab_id": collab_id,
                        "record_id": rid,
                        "signal_type": st,
                        "signal_key": signal_key(sig) if sig is not None else None,
                        "signal": sig,
                        "fingerprint": fp_,
                        "deleted": deleted,
                        "generation": generation,
                        "updated_at": now,
                    }
                )
            if rows_out:
                stmt = _insert(conn, _record)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[_record.c.collab_id, _record.c.record_id],
                    set_={
                        name: stmt.excluded[name]
                        for name in (
                            "signal_type",
                            "signal_key",
                            "signal",
                            "fingerprint",
                            "deleted",
                            "generation",
                            "updated_at",
                        )
                    },
                )
                for start in range(0, len(rows_out), CHUNK):
                    conn.execute(stmt, rows_out[start : start + CHUNK])
            seen = sorted(touched - written)
            if seen:
                conn.execute(
                    update(_record)
                    .where(
                        _record.c.collab_id == collab_id,
                        _record.c.record_id == bindparam("rid"),
                    )
                    .values(generation=generation),
                    [{"rid": rid} for rid in seen],
                )
        return changes

    def withdraw_unseen(
        self, collab_id: int, generation: int, now: datetime, *, limit: int = 5000
    ) -> set[Pair]:
        """Mark up to ``limit`` live records not seen since full-fetch ``generation`` began
        as deleted; their signals (empty: none were left). Call until empty."""
        with self.db.transaction(refresh=False) as tx:
            rows = tx.conn.execute(
                select(_record.c.record_id, _record.c.signal_type, _record.c.signal)
                .where(
                    _record.c.collab_id == collab_id,
                    _record.c.deleted.is_(False),
                    _record.c.generation < generation,
                )
                .limit(limit)
            ).all()
            ids = [r.record_id for r in rows]
            for start in range(0, len(ids), CHUNK):
                tx.conn.execute(
                    update(_record)
                    .where(
                        _record.c.collab_id == collab_id,
                        _record.c.record_id.in_(ids[start : start + CHUNK]),
                    )
                    .values(deleted=True, updated_at=now)
                )
        return {(r.signal_type, r.signal) for r in rows}

    def withdraw_all(self, collab_id: int, now: datetime) -> set[Pair]:
        """Mark every live record of a collaboration deleted; their signals."""
        with self.db.transaction(refresh=False) as tx:
            rows = tx.conn.execute(
                select(_record.c.signal_type, _record.c.signal)
                .where(_record.c.collab_id == collab_id, _record.c.deleted.is_(False))
                .distinct()
            ).all()
            tx.conn.execute(
                update(_record)
                .where(_record.c.collab_id == collab_id, _record.c.deleted.is_(False))
                .values(deleted=True, updated_at=now)
            )
        return {(r.signal_type, r.signal) for r in rows}

    def orphaned(self, bank_id: int, pairs: Iterable[Pair]) -> builtins.list[Pair]:
        """Those of ``pairs`` no live record of any collaboration feeding the bank carries."""
        wanted = sorted(set(pairs))
        if not wanted:
            return []
        with self.db.reading() as conn:
            collabs = [
                int(i)
                for i in conn.execute(select(_collab.c.id).where(_collab.c.bank_id == bank_id))
                .scalars()
                .all()
            ]
            carried: set[tuple[str, str]] = set()
            for start in range(0, len(wanted), CHUNK):
                part = wanted[start : start + CHUNK]
                rows = conn.execute(
                    select(_record.c.signal_type, _record.c.signal_key)
                    .where(
                        _record.c.collab_id.in_(collabs),
                        _record.c.deleted.is_(False),
                        tuple_(_record.c.signal_type, _record.c.signal_key).in_(
                            [(t, signal_key(s)) for t, s in part]
                        ),
                    )
                    .distinct()
                )
                carried.update((r.signal_type, r.signal_key) for r in rows)
        return [(t, s) for t, s in wanted if (t, signal_key(s)) not in carried]

    def live_records(self, collab_id: int) -> int:
        with self.db.reading() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(_record)
                    .where(_record.c.collab_id == collab_id, _record.c.deleted.is_(False))
                ).scalar_one()
            )

    def records_carrying(
        self, bank_id: int, signal_type: str, signal: str
    ) -> builtins.list[tuple[int, str]]:
        """``(collaboration id, record id)`` of live records carrying a signal into a bank
        through collaborations with feedback on."""
        with self.db.reading() as conn:
            rows = conn.execute(
                select(_record.c.collab_id, _record.c.record_id)
                .join(_collab, _collab.c.id == _record.c.collab_id)
                .where(
                    _collab.c.bank_id == bank_id,
                    _collab.c.feedback.is_(True),
                    _record.c.deleted.is_(False),
                    _record.c.signal_type == signal_type,
                    _record.c.signal_key == signal_key(signal),
                )
                .order_by(_record.c.collab_id, _record.c.record_id)
            ).all()
        return [(int(r.collab_id), str(r.record_id)) for r in rows]

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
                _insert(tx.conn, _opinion)
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


_SELECT_STATE = select(_collab, _bank.c.name.label("bank_name")).join(
    _bank, _bank.c.id == _collab.c.bank_id
)


def _state(row: Any) -> CollaborationState:
    return CollaborationState(
        collaboration=Collaboration(
            name=row.name,
            exchange=row.exchange,
            bank=row.bank_name,
            settings=json.loads(row.settings or "{}"),
            credentials=row.credentials,
            interval_seconds=int(row.interval_seconds),
            enabled=bool(row.enabled),
            feedback=bool(row.feedback),
            id=int(row.id),
            created_at=as_utc(row.created_at),
        ),
        bank_id=int(row.bank_id),
        checkpoint=json.loads(row.checkpoint) if row.checkpoint else None,
        generation=int(row.generation),
        full_in_progress=bool(row.full_in_progress),
        updated_at=as_utc(row.updated_at),
        last_fetch_at=as_utc(row.last_fetch_at),
        last_attempt_at=as_utc(row.last_attempt_at),
        last_error=row.last_error,
        entries_added=int(row.entries_added),
        entries_removed=int(row.entries_removed),
    )
