"""Persistence of retroactive matching: the retained hashes of recently checked content,
the (content, entry) pairs already found, and the change-log cursor (the ``retro_seq``
counter) up to which new entries were matched against them.

Only hashes and the source description are kept, never media or thumbnails. Rows older than
the window are deleted by :meth:`RetroRepository.purge`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, func, insert, select, tuple_, update

from amparo.clock import as_utc
from amparo.store.models import CounterRow, signal_key
from amparo.store.models_retro import RetroFindRow, RetroHashRow, RetroSignalRow
from amparo.store.uow import Database, UnitOfWork

_hash = cast(Table, RetroHashRow.__table__)
_signal = cast(Table, RetroSignalRow.__table__)
_find = cast(Table, RetroFindRow.__table__)
_counter = cast(Table, CounterRow.__table__)

CURSOR = "retro_seq"
"""The counter holding the change-log position retroactive matching has caught up to."""
_CHUNK = 500


@dataclass(frozen=True)
class Retained:
    """One retained content: its signals, what a find reports about it, where it was seen."""

    id: int
    sha256: str
    signals: dict[str, str]
    detail: dict[str, Any]
    source: dict[str, Any]
    checked_at: datetime
    found: frozenset[int] = field(default_factory=frozenset)
    """Entry ids already found for it (by its check, or retroactively)."""


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


class RetroRepository:
    """Retained hashes, found pairs and the cursor."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- retaining --------------------------------------------------------------------------

    def remember(
        self,
        sha256: str,
        signals: Mapping[str, str],
        *,
        detail: Mapping[str, Any],
        source: Mapping[str, Any],
        at: datetime,
        found: Iterable[int] = (),
    ) -> None:
        """Keep (or refresh) one content's hashes: one row per content, its ``checked_at``
        and source the latest sighting's. ``found``: entries its check matched (never found
        again retroactively). Starts the cursor at the current change-log position when
        there is none yet (entries older than the first retained check were matched by it)."""
        with self.db.transaction(refresh=False) as tx:
            conn = tx.conn
            self._ensure_cursor(conn)
            signals_json = _dumps(signals)
            row = conn.execute(
                select(_hash.c.id, _hash.c.signals).where(_hash.c.sha256 == sha256)
            ).first()
            values = {
                "signals": signals_json,
                "detail": _dumps(detail),
                "source": _dumps(source),
                "checked_at": at,
            }
            if row is None:
                hash_id = int(
                    conn.execute(
                        insert(_hash).values(sha256=sha256, **values).returning(_hash.c.id)
                    ).scalar_one()
                )
                self._write_signals(conn, hash_id, signals)
            else:
                hash_id = int(row.id)
                conn.execute(update(_hash).where(_hash.c.id == hash_id).values(**values))
                if row.signals != signals_json:
                    conn.execute(delete(_signal).where(_signal.c.hash_id == hash_id))
                    self._write_signals(conn, hash_id, signals)
            self.record_found(conn, [(hash_id, e) for e in set(found)], at)

    @staticmethod
    def _write_signals(conn: Connection, hash_id: int, signals: Mapping[str, str]) -> None:
        rows = [
            {"hash_id": hash_id, "signal_type": t, "signal_key": signal_key(v)}
            for t, v in signals.items()
        ]
        if rows:
            conn.execute(insert(_signal), rows)

    @staticmethod
    def record_found(conn: Connection, pairs: Sequence[tuple[int, int]], at: datetime) -> int:
        """Mark (content id, entry id) pairs found; pairs already marked are left alone."""
        wanted = sorted(set(pairs))
        if not wanted:
            return 0
        existing: set[tuple[int, int]] = set()
        for start in range(0, len(wanted), _CHUNK):
            part = wanted[start : start + _CHUNK]
            rows = conn.execute(
                select(_find.c.hash_id, _find.c.entry_id).where(
                    tuple_(_find.c.hash_id, _find.c.entry_id).in_(part)
                )
            )
            existing.update((int(r.hash_id), int(r.entry_id)) for r in rows)
        new = [
            {"hash_id": h, "entry_id": e, "found_at": at}
            for h, e in wanted
            if (h, e) not in existing
        ]
        if new:
            conn.execute(insert(_find), new)
        return len(new)

    # -- the cursor -------------------------------------------------------------------------

    @staticmethod
    def _ensure_cursor(conn: Connection) -> None:
        if conn.execute(select(_counter.c.value).where(_counter.c.name == CURSOR)).first():
            return
        seq = conn.execute(select(_counter.c.value).where(_counter.c.name == "entry_seq"))
        conn.execute(insert(_counter).values(name=CURSOR, value=int(seq.scalar_one())))

    def cursor(self) -> int | None:
        """The change-log position matched up to; None before anything was retained."""
        with self.db.reading() as conn:
            row = conn.execute(select(_counter.c.value).where(_counter.c.name == CURSOR)).first()
        return None if row is None else int(row.value)

    @staticmethod
    def set_cursor(tx: UnitOfWork, seq: int) -> None:
        """Move the cursor forward (never back), in the caller's transaction."""
        tx.conn.execute(
            update(_counter)
            .where(_counter.c.name == CURSOR, _counter.c.value < seq)
            .values(value=seq)
        )

    # -- reading for a catch-up -------------------------------------------------------------

    def count(self, signal_type: str | None = None, *, since: datetime | None = None) -> int:
        """How many contents are retained (with a signal of ``signal_type``; checked since)."""
        query = select(func.count()).select_from(_hash)
        if signal_type is not None:
            query = query.join(_signal, _signal.c.hash_id == _hash.c.id).where(
                _signal.c.signal_type == signal_type
            )
        if since is not None:
            query = query.where(_hash.c.checked_at >= since)
        with self.db.reading() as conn:
            return int(conn.execute(query).scalar_one())

    def with_signals(self, signal_type: str, values: Iterable[str], *, since: datetime) -> set[int]:
        """Ids of contents checked since ``since`` with a ``signal_type`` signal equal to one
        of ``values`` (an indexed equality per chunk)."""
        out: set[int] = set()
        unique = sorted({signal_key(v) for v in values})
        with self.db.reading() as conn:
            for start in range(0, len(unique), _CHUNK):
                rows = conn.execute(
                    select(_signal.c.hash_id)
                    .join(_hash, _hash.c.id == _signal.c.hash_id)
                    .where(
                        _signal.c.signal_type == signal_type,
                        _signal.c.signal_key.in_(unique[start : start + _CHUNK]),
                        _hash.c.checked_at >= since,
                    )
                )
                out.update(int(r.hash_id) for r in rows)
        return out

    def iter_signal(
        self, signal_type: str, *, since: datetime, batch: int = 20_000
    ) -> Iterator[list[tuple[int, str]]]:
        """``(content id, signal key)`` of every content checked since ``since`` with a
        ``signal_type`` signal, in id order, in batches (PDQ: the key is the hash)."""
        last = 0
        with self.db.reading() as conn:
            while True:
                rows = conn.execute(
                    select(_signal.c.hash_id, _signal.c.signal_key)
                    .join(_hash, _hash.c.id == _signal.c.hash_id)
                    .where(
                        _signal.c.signal_type == signal_type,
                        _hash.c.checked_at >= since,
                        _signal.c.hash_id > last,
                    )
                    .order_by(_signal.c.hash_id)
                    .limit(batch)
                ).all()
                if not rows:
                    return
                last = int(rows[-1].hash_id)
                yield [(int(r.hash_id), str(r.signal_key)) for r in rows]

    def get(self, ids: Iterable[int]) -> list[Retained]:
        """Retained contents by id, with the entries already found for each, in id order."""
        wanted = sorted(set(ids))
        out: list[Retained] = []
        with self.db.reading() as conn:
            for start in range(0, len(wanted), _CHUNK):
                part = wanted[start : start + _CHUNK]
                found: dict[int, set[int]] = {}
                for r in conn.execute(
                    select(_find.c.hash_id, _find.c.entry_id).where(_find.c.hash_id.in_(part))
                ):
                    found.setdefault(int(r.hash_id), set()).add(int(r.entry_id))
                rows = conn.execute(select(_hash).where(_hash.c.id.in_(part)).order_by(_hash.c.id))
                out.extend(
                    Retained(
                        id=int(r.id),
                        sha256=r.sha256,
                        signals=json.loads(r.signals),
                        detail=json.loads(r.detail or "{}"),
                        source=json.loads(r.source or "{}"),
                        checked_at=as_utc(r.checked_at),
                        found=frozenset(found.get(int(r.id), ())),
                    )
                    for r in rows
                )
        return out

    def by_sha256(self, sha256: str) -> Retained | None:
        """The retained content with this SHA-256, if any."""
        with self.db.reading() as conn:
            row = conn.execute(select(_hash.c.id).where(_hash.c.sha256 == sha256)).first()
        if row is None:
            return None
        found = self.get([int(row.id)])
        return found[0] if found else None

    # -- forgetting -------------------------------------------------------------------------

    def purge(self, tx: UnitOfWork, before: datetime) -> int:
        """Delete contents checked before ``before`` (their signals and finds with them),
        in the caller's transaction; returns how many."""
        conn = tx.conn
        old = select(_hash.c.id).where(_hash.c.checked_at < before).scalar_subquery()
        conn.execute(delete(_find).where(_find.c.hash_id.in_(old)))
        conn.execute(delete(_signal).where(_signal.c.hash_id.in_(old)))
        result = conn.execute(delete(_hash).where(_hash.c.checked_at < before))
        return int(result.rowcount or 0)

    def forget_all(self, tx: UnitOfWork) -> int:
        """Delete everything retained and the cursor (retroactive matching turned off)."""
        conn = tx.conn
        conn.execute(delete(_find))
        conn.execute(delete(_signal))
        result = conn.execute(delete(_hash))
        conn.execute(delete(_counter).where(_counter.c.name == CURSOR))
        return int(result.rowcount or 0)
