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
_LATEST = "s.n IN (SELECT max(n) FROM amparo_staging GROUP BY signal_type, signal_key)"


def _provenance(value: dict[str, Any] | None) -> str | None:
    """The stored text of an entry's provenance (canonical JSON: equal provenances compare
    equal as text)."""
    if not value:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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
                        r.signal,
                        signal_key(r.signal),
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

    def count_existing(self, bank_id: int) -> int:
        """Distinct staged signals already active in the bank."""
        return int(
            self.conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT DISTINCT signal_type, signal_key "
                    "FROM amparo_staging) s WHERE EXISTS (SELECT 1 FROM bank_entries e "
                    "WHERE e.signal_type = s.signal_type AND e.signal_key = s.signal_key "
                    "AND e.bank_id = :bank AND e.removed_at IS NULL)"
                ),
                {"bank": bank_id},
            ).scalar_one()
        )

    def merge(self, bank_id: int, now: datetime, seq: int) -> int:
        """Insert or update the staged entries; return how many distinct signals were staged.
        A row's change-log position moves only when what matching sees changes (it was
        removed, ``enabled`` flips, or its category, tags or source id change), so
        re-importing a list unchanged does not churn the index; a new provenance alone is
        stored without moving it (an import without provenance keeps the entry's)."""
        stmt = text(
            "INSERT INTO bank_entries (bank_id, signal_type, signal, signal_key, category, tags, "
            "source_id, note, enabled, provenance, added_at, removed_at, seq) "
            "SELECT :bank, s.signal_type, s.signal, s.signal_key, s.category, s.tags, "
            "s.source_id, s.note, s.enabled, s.provenance, :now, NULL, :seq "
            "FROM amparo_staging s "
            "WHERE " + _LATEST + " ORDER BY s.signal_type, s.signal_key "
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
        self.conn.execute(stmt, {"bank": bank_id, "now": now, "seq": seq})
        return int(
            self.conn.execute(
                text(
                    "SELECT count(*) FROM "
                    "(SELECT DISTINCT signal_type, signal_key FROM amparo_staging) d"
                )
            ).scalar_one()
        )

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
        self.conn.exec_driver_sql("DROP TABLE IF EXISTS amparo_staging")
