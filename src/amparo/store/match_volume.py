"""Persistence of match volume: how many lookups matched each bank per day (UTC), by where
they came from (``match_volume``).

Counts only, never a hash, a path or anything of the content. Each process adds what its
:class:`amparo.tally.MatchTally` gathered with one additive upsert per flush (``matches =
matches + excluded.matches``), so several server processes and scans on one database add up
and none overwrites another's counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from amparo.store.models import BankRow, MatchVolumeRow
from amparo.store.uow import Database

_volume = cast(Table, MatchVolumeRow.__table__)
_bank = cast(Table, BankRow.__table__)
SOURCE_MAX = 16
"""The longest source name stored (the column's length); longer ones are cut."""

VolumeKey = tuple[date, str, str]
"""(day, bank name, source)."""


def _insert(conn: Connection) -> Any:
    """The dialect's INSERT (both have ``on_conflict_do_update``)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(_volume)


class MatchVolumeRepository:
    """Adds to, reads and trims the per-day match counts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, counts: Mapping[VolumeKey, int]) -> int:
        """Add ``counts`` to the stored ones in one transaction; counts of banks that no
        longer exist are dropped. Returns how many matches were stored."""
        wanted = {bank for _, bank, _ in counts}
        if not wanted:
            return 0
        with self.db.transaction(refresh=False) as tx:
            conn = tx.conn
            ids = {
                str(r.name): int(r.id)
                for r in conn.execute(
                    select(_bank.c.id, _bank.c.name).where(_bank.c.name.in_(sorted(wanted)))
                )
            }
            rows: dict[tuple[date, int, str], int] = {}
            for (day, bank, source), n in counts.items():
                if bank in ids and n > 0:
                    key = (day, ids[bank], source[:SOURCE_MAX])
                    rows[key] = rows.get(key, 0) + n
            # One statement per row, in a stable order (two processes flushing at once take
            # the rows' locks in the same order on PostgreSQL: no deadlock).
            for (day, bank_id, source), n in sorted(rows.items()):
                stmt = _insert(conn).values(day=day, bank_id=bank_id, source=source, matches=n)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[_volume.c.day, _volume.c.bank_id, _volume.c.source],
                        set_={"matches": _volume.c.matches + stmt.excluded.matches},
                    )
                )
            return sum(rows.values())

    def since(self, first: date) -> list[tuple[date, str, str, int]]:
        """(day, bank name, source, matches) of every day from ``first`` on, oldest first."""
        query = (
            select(_volume.c.day, _bank.c.name, _volume.c.source, _volume.c.matches)
            .join(_bank, _bank.c.id == _volume.c.bank_id)
            .where(_volume.c.day >= first)
            .order_by(_volume.c.day, _bank.c.name, _volume.c.source)
        )
        with self.db.reading() as conn:
            return [
                (_as_date(r.day), str(r.name), str(r.source), int(r.matches))
                for r in conn.execute(query)
            ]

    def purge(self, before: date) -> int:
        """Delete the counts of days before ``before``; how many rows went."""
        with self.db.transaction(refresh=False) as tx:
            result = tx.conn.execute(delete(_volume).where(_volume.c.day < before))
            return int(result.rowcount or 0)

    def total(self) -> int:
        """Every stored match (tests and diagnostics)."""
        with self.db.reading() as conn:
            return int(
                conn.execute(select(func.coalesce(func.sum(_volume.c.matches), 0))).scalar_one()
            )


def _as_date(value: Any) -> date:
    """A stored day (SQLite may hand back text in odd setups)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))
