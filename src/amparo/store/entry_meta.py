"""Reads of entry metadata for the in-memory entry table (:mod:`amparo.index.entries`): every
entry once, then the entries the change log says changed.

Every change that affects what a match reports moves an entry's change-log position (``seq``):
adding, removing, enabling, disabling and pausing an entry, and a re-import that changes its
category, tags or source id; deleting a bank leaves tombstones. A change of provenance alone
does not (it is not part of a match).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from sqlalchemy import Table, select

from amparo.index.entries import RawEntry
from amparo.store.models import EntryRow, EntryTombstoneRow
from amparo.store.uow import Database

_entry = cast(Table, EntryRow.__table__)
_tomb = cast(Table, EntryTombstoneRow.__table__)
_COLUMNS = [
    _entry.c.id,
    _entry.c.bank_id,
    _entry.c.enabled,
    _entry.c.removed_at.is_not(None),
    _entry.c.disabled_until,
    _entry.c.category,
    _entry.c.tags,
    _entry.c.source_id,
    # Variant columns come with migration 0014; read them when the model has them.
    *(c for c in (_entry.c.get("variant_of"), _entry.c.get("variant")) if c is not None),
]


class EntryMetaReader:
    """The entry table's reads from one database, as rows of :data:`RawEntry`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def iter_all(self, batch: int = 100_000) -> Iterator[list[RawEntry]]:
        """Every entry (removed ones too, flagged), in id order, in batches. Read the
        change-log position first: rows changed after it may show their new state, and
        catching up from it applies them again."""
        last = 0
        with self.db.reading() as conn:
            while True:
                rows = conn.execute(
                    select(*_COLUMNS).where(_entry.c.id > last).order_by(_entry.c.id).limit(batch)
                ).all()
                if not rows:
                    return
                last = int(rows[-1][0])
                yield [tuple(r) for r in rows]

    def since(self, seq: int, top: int) -> tuple[list[RawEntry], list[int]]:
        """Entries whose change-log position is in ``(seq, top]``, and the ids of entries
        deleted (with their bank) in that range."""
        with self.db.reading() as conn:
            rows = conn.execute(
                select(*_COLUMNS).where(_entry.c.seq > seq, _entry.c.seq <= top)
            ).all()
            gone = conn.execute(
                select(_tomb.c.entry_id).where(_tomb.c.seq > seq, _tomb.c.seq <= top)
            ).all()
        return [tuple(r) for r in rows], [int(g[0]) for g in gone]
