"""The bulk-import staging table: how a million entries are added in seconds, not hours."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, bindparam, text

from amparo.banks.model import EntryRecord
from amparo.store.models import signal_key

BATCH = 20_000
_STAGING_COLUMNS = (
    "signal_type",
    "signal",
    "signal_key",
    "category",
    "tags",
    "source_id",
    "note",
    "enabled",
    "provenance",
)
# The last of duplicate signals in one import wins.
_CHANGED = (
    "OR bank_entries.{0} <> excluded.{0} OR (bank_entries.{0} IS NULL) <> (excluded.{0} IS NULL) "
)
"""A column that differs between a stored entry and its re-import (NULL-safe, both dialects)."""
_LATEST = (
    "NOT EXISTS (SELECT 1 FROM amparo_staging d WHERE d.signal_type = s.signal_type "
    "AND d.signal_key = s.signal_key AND d.n > s.n)"
)
"""The last staged row of a signal: a probe of the staging index beside the ordered walk (an
``IN (SELECT max(n) ... GROUP BY ...)`` built a temporary B-tree of every row and sorted
them again: at 100 million rows, gigabytes of temporary file and a superlinear merge)."""
_SLICE = "(s.signal_type, s.signal_key) > (:lo_type, :lo_key)"
_SLICE_END = "(s.signal_type, s.signal_key) <= (:hi_type, :hi_key)"

Key = tuple[str, str]
"""A staged ``(signal_type, signal_key)``."""
Slice = tuple[Key | None, Key | None]
"""The staged signals after the first key (None: from the start) up to and including the
second (None: to the end)."""
WHOLE: Slice = (None, None)


def _where(part: Slice) -> tuple[str, dict[str, str]]:
    """SQL conditions on ``s`` selecting ``part``, and their parameters."""
    sql = ""
    params: dict[str, str] = {}
    lo, hi = part
    if lo is not None:
        sql += " AND " + _SLICE
        params.update(lo_type=lo[0], lo_key=lo[1])
    if hi is not None:
        sql += " AND " + _SLICE_END
        params.update(hi_type=hi[0], hi_key=hi[1])
    return sql, params


def _provenance(value: dict[str, Any] | None) -> str | None:
    """The stored text of an entry's provenance (canonical JSON: equal provenances compare
    equal as text)."""
    if not value:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _signal_and_key(signal: str) -> tuple[str | None, str]:
    """What is staged of a signal: NULL and the key when the signal is its own key (most
    are; a list of 100 million then stages 6 GB less)."""
    key = signal_key(signal)
    return (None if key == signal else signal), key


class Staging:
    """A temporary table that bulk imports pass through: rows are bulk-loaded into it (COPY on
    PostgreSQL), then merged into ``bank_entries`` with one sorted statement."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        serial = "BIGSERIAL PRIMARY KEY" if self.pg else "INTEGER PRIMARY KEY"
        signal = 'TEXT COLLATE "C"' if self.pg else "TEXT"
        conn.exec_driver_sql("DROP TABLE IF EXISTS amparo_staging")
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE amparo_staging (n {serial}, signal_type TEXT, signal TEXT, "
            f"signal_key {signal}, "
            "category TEXT, tags TEXT, source_id TEXT, note TEXT, enabled BOOLEAN, provenance TEXT)"
        )

    def load(self, records: Iterable[EntryRecord]) -> None:
        cursor: Any = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cols = ", ".join(_STAGING_COLUMNS)
        batch: list[tuple[Any, ...]] = []

        def flush() -> None:
            if not batch:
                return
            if self.pg:
                with cursor.copy(f"COPY amparo_staging ({cols}) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
            else:
                cursor.executemany(
                    f"INSERT INTO amparo_staging ({cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch
                )
            batch.clear()

        try:
            for r in records:
                batch.append(
                    (
                        r.signal_type,
                        *_signal_and_key(r.signal),
                        r.category,
                        json.dumps(r.tags) if r.tags else "",
                        r.source_id,
                        r.note,
                        bool(r.enabled),
                        _provenance(r.provenance),
                    )
                )
                if len(batch) >= BATCH:
                    flush()
            flush()
        finally:
            cursor.close()
        self.conn.exec_driver_sql(
            "CREATE INDEX amparo_staging_key ON amparo_staging (signal_type, signal_key)"
        )
        if self.pg:
            self.conn.exec_driver_sql("ANALYZE amparo_staging")

    def count_existing(self, bank_id: int, part: Slice = WHOLE) -> int:
        """Distinct staged signals (of ``part``) already active in the bank."""
        return self._count(part, bank_id)

    def count_distinct(self, part: Slice = WHOLE) -> int:
        """Distinct staged signals (of ``part``)."""
        return self._count(part, None)

    def _count(self, part: Slice, active_in: int | None) -> int:
        where, params = _where(part)
        sql = (
            "SELECT count(*) FROM (SELECT DISTINCT signal_type, signal_key "
            "FROM amparo_staging s WHERE 1 = 1" + where + ") d"
        )
        if active_in is not None:
            sql += (
                " WHERE EXISTS (SELECT 1 FROM bank_entries e "
                "WHERE e.signal_type = d.signal_type AND e.signal_key = d.signal_key "
                "AND e.bank_id = :bank AND e.removed_at IS NULL)"
            )
        values: dict[str, Any] = params if active_in is None else {**params, "bank": active_in}
        return int(self.conn.execute(text(sql), values).scalar_one())

    def _any(self, part: Slice) -> bool:
        where, params = _where(part)
        sql = "SELECT 1 FROM amparo_staging s WHERE 1 = 1" + where + " LIMIT 1"
        return self.conn.execute(text(sql), params).first() is not None

    def slices(self, rows: int) -> list[Slice]:
        """The staged signals in parts of about ``rows`` staged rows each, in key order (a
        key's duplicates stay in one part): each part a range of the staging index. One walk
        of the index; a list of 100 million rows in parts of 5 million is 20 keys."""
        parts: list[Slice] = []
        lo: Key | None = None
        while True:
            where, params = _where((lo, None))
            row = self.conn.execute(
                text(
                    "SELECT signal_type, signal_key FROM amparo_staging s WHERE 1 = 1"
                    + where
                    + " ORDER BY signal_type, signal_key LIMIT 1 OFFSET :skip"
                ),
                {**params, "skip": max(rows - 1, 0)},
            ).first()
            hi: Key | None = None if row is None else (str(row[0]), str(row[1]))
            if hi is not None and not self._any((hi, None)):
                hi = None  # the part ends with the last staged signal: no empty part after it
            parts.append((lo, hi))
            if hi is None:
                return parts
            lo = hi

    def merge(self, bank_id: int, now: datetime, seq: int, part: Slice = WHOLE) -> int:
        """Insert or update the staged entries (of ``part``); return how many distinct signals
        that was.
        A row's change-log position moves only when what matching sees changes (it was
        removed, ``enabled`` flips, or its category, tags or source id change), so
        re-importing a list unchanged does not churn the index; a new provenance alone is
        stored without moving it (an import without provenance keeps the entry's)."""
        where, params = _where(part)
        stmt = text(
            "INSERT INTO bank_entries (bank_id, signal_type, signal, signal_key, category, tags, "
            "source_id, note, enabled, provenance, added_at, removed_at, seq) "
            "SELECT :bank, s.signal_type, COALESCE(s.signal, s.signal_key), s.signal_key, "
            "s.category, s.tags, s.source_id, s.note, s.enabled, s.provenance, :now, NULL, :seq "
            "FROM amparo_staging s "
            "WHERE " + _LATEST + where + " ORDER BY s.signal_type, s.signal_key "
            "ON CONFLICT (signal_type, signal_key, bank_id) DO UPDATE SET "
            "signal = excluded.signal, category = excluded.category, tags = excluded.tags, "
            "source_id = excluded.source_id, note = excluded.note, enabled = excluded.enabled, "
            # An import that says nothing of provenance keeps what the entry had.
            "provenance = COALESCE(excluded.provenance, bank_entries.provenance), "
            "added_at = CASE WHEN bank_entries.removed_at IS NULL THEN bank_entries.added_at "
            "ELSE excluded.added_at END, "
            "seq = CASE WHEN bank_entries.removed_at IS NOT NULL "
            "OR bank_entries.enabled <> excluded.enabled "
            # What a match reports changed: in-memory entry tables must hear of it.
            + _CHANGED.format("category")
            + _CHANGED.format("tags")
            + _CHANGED.format("source_id")
            + "THEN excluded.seq ELSE bank_entries.seq END, "
            "removed_at = NULL"
        ).bindparams(bindparam("now", type_=DateTime(timezone=True)))
        self.conn.execute(stmt, {"bank": bank_id, "now": now, "seq": seq, **params})
        return self.count_distinct(part)

    def remove_others(self, bank_id: int, now: datetime, seq: int) -> int:
        stmt = text(
            "UPDATE bank_entries SET removed_at = :now, seq = :seq "
            # Variants are not in hash lists: they follow their entry (store.variants).
            "WHERE bank_id = :bank AND removed_at IS NULL AND variant_of IS NULL "
            "AND NOT EXISTS ("
            "SELECT 1 FROM amparo_staging s WHERE s.signal_type = bank_entries.signal_type "
            "AND s.signal_key = bank_entries.signal_key)"
        ).bindparams(bindparam("now", type_=DateTime(timezone=True)))
        result = self.conn.execute(stmt, {"bank": bank_id, "now": now, "seq": seq})
        return int(result.rowcount or 0)

    def drop(self) -> None:
        if self.pg:
            self.conn.exec_driver_sql("DROP TABLE IF EXISTS amparo_staging")
            return
        # SQLite's secure delete (built in by Debian) would journal and zero every page of
        # the table first: as much temporary disk again, and time. Its rows are the list
        # just merged into the database, in this connection's own temporary file.
        was = self.conn.exec_driver_sql("PRAGMA temp.secure_delete").scalar()
        self.conn.exec_driver_sql("PRAGMA temp.secure_delete = 0")
        try:
            self.conn.exec_driver_sql("DROP TABLE IF EXISTS amparo_staging")
        finally:
            self.conn.exec_driver_sql(f"PRAGMA temp.secure_delete = {int(was or 0)}")
