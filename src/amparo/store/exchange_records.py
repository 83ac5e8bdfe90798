"""The records a collaboration fetched: applying a batch of updates, withdrawing what a full
fetch no longer lists, and finding the signals no live record carries any more (part of
:class:`amparo.store.exchanges.ExchangeRepository`; table ``exchange_records``).

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

from sqlalchemy import Connection, Table, bindparam, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from amparo.banks.model import EntryRecord
from amparo.exchanges.model import Update
from amparo.store.models import signal_key
from amparo.store.models_exchanges import CollaborationRow, ExchangeRecordRow
from amparo.store.uow import Database

_collab = cast(Table, CollaborationRow.__table__)
_record = cast(Table, ExchangeRecordRow.__table__)

CHUNK = 500
"""Rows per ``IN (...)`` list: under SQLite's bound-parameter limit with room to spare."""

Pair = tuple[str, str]
"""``(signal type, signal)``."""


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


def fingerprint(update: Update) -> str:
    """What an upsert says, hashed: an unchanged record is not written to the bank again
    (no churn, and an entry a curator disabled is not silently re-enabled)."""
    # Fields joined by control characters no field holds (a JSON dump of the whole record
    # cost a tenth of a large first fetch); the provenance, rare and nested, as JSON.
    provenance = (
        json.dumps(update.provenance.to_json(), sort_keys=True, separators=(",", ":"))
        if update.provenance is not None
        else ""
    )
    text = "\x1e".join(
        (
            update.signal_type or "",
            update.signal or "",
            "\x00" if update.category is None else update.category,
            "\x1f".join(update.tags),
            "\x1f".join(update.source_ids),
            provenance,
        )
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def dialect_insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT (both have ``on_conflict_do_update``/``_do_nothing``)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


class ExchangeRecords:
    """The records part of the exchanges repository. Every write joins an open unit of work."""

    def __init__(self, db: Database) -> None:
        self.db = db

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
                stmt = dialect_insert(conn, _record)
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
