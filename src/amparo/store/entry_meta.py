"""The entry table kept in step with the database (:class:`EntryTableSync`): every entry's
metadata read once, then the entries the change log says changed; and :func:`memory_only`,
which keeps lookups on an event loop off the database.

Every change that affects what a match reports moves an entry's change-log position (``seq``):
adding, removing, enabling, disabling and pausing an entry, and a re-import that changes its
category, tags or source id; deleting a bank leaves tombstones. A change of provenance alone
does not (it is not part of a match).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, select

from amparo.banks.model import BankInfo, EntryView
from amparo.errors import DatabaseNeededError
from amparo.index.entries import EntryMeta, EntryTable, RawEntry
from amparo.store.base import Store
from amparo.store.models import EntryRow, EntryTombstoneRow
from amparo.store.uow import Database

_VIEWS_MAX = 20_000
"""Entry views kept for repeated hits (a few MB); emptied past this, so memory stays flat.
A miss costs a read of the in-memory entry table, not a database round trip."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MEMORY_ONLY: ContextVar[bool] = ContextVar("amparo_memory_only", default=False)


@contextmanager
def memory_only() -> Iterator[None]:
    """Lookups inside answer from memory or raise :class:`DatabaseNeededError`, never read
    the database: what a server's event loop wraps the lookups it runs itself in."""
    token = _MEMORY_ONLY.set(True)
    try:
        yield
    finally:
        _MEMORY_ONLY.reset(token)


def memory_only_now() -> bool:
    """Whether the caller is inside :func:`memory_only`."""
    return _MEMORY_ONLY.get()


def needs_database(what: str) -> None:
    """Say that the caller is about to read the database: refused inside :func:`memory_only`."""
    if _MEMORY_ONLY.get():
        raise DatabaseNeededError(
            f"this lookup needs the database ({what})", hint="run it in a worker thread"
        )


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


class EntryTableSync:
    """The in-memory entry table (:class:`amparo.index.entries.EntryTable`) of one store,
    loaded once and caught up from the change log like the indexes: what lets a lookup check
    its hits (bank, enabled, removed, paused) and report them without a database read."""

    def __init__(self, store: Store, *, enabled: bool = True) -> None:
        self.enabled = enabled
        """Whether to load the table: a short-lived process (one CLI lookup) reads the few
        entries it hits instead; :meth:`entries` turns it on once those reach the thousands."""
        self._read_from_database = 0
        self._loading = threading.Lock()
        self.reader = EntryMetaReader(store.db)
        self.banks = store.banks
        self.changes = store.changes
        self.table: EntryTable | None = None
        self._views: dict[int, EntryView] = {}

    def load_in_background(
        self, before_ready: Callable[[], None] | None = None
    ) -> threading.Thread:
        """Turn the table on and load it in a thread (a service's start-up stays short;
        lookups read the database until it is there, and the next refresh catches it up).
        ``before_ready`` runs once the table is read, before it is used (and /readyz says
        so): reading every entry can push a worker's index out of the page cache (100M
        entries read 35 GB), which it then faults back in."""
        self.enabled = True
        thread = threading.Thread(
            target=self._load, args=(before_ready,), name="amparo-entry-table", daemon=True
        )
        thread.start()
        return thread

    def _load(self, before_ready: Callable[[], None] | None = None) -> int:
        with self._loading:
            if self.table is not None:
                return 0
            table = EntryTable()
            top = self.changes.current_seq()
            for batch in self.reader.iter_all():
                table.apply_raw(batch)
            table.apply(checkpoint=top)
            if before_ready is not None:
                before_ready()
            self.table = table
            return len(table)

    def catch_up(self) -> int:
        """Load the table (the first time, unless a thread is loading it) or apply the
        changes since its checkpoint. Returns how many rows were applied."""
        table = self.table
        if table is None:
            if not self.enabled or self._loading.locked():
                return 0
            return self._load()
        top = self.changes.current_seq()
        if top == table.checkpoint:
            return 0
        rows, gone = self.reader.since(table.checkpoint, top)
        table.apply_raw(rows, gone, checkpoint=top)
        return len(rows) + len(gone)

    def behind(self, checkpoint: int) -> bool:
        """Whether the table is missing or reflects less of the change log than ``checkpoint``
        (then an id it lacks may still be an entry)."""
        return self.table is None or self.table.checkpoint < checkpoint

    def forget_views(self) -> None:
        self._views = {}

    def entries(
        self, ids: set[int], banks: Mapping[int, BankInfo], checkpoint: int
    ) -> dict[int, EntryView]:
        """The stored entries behind ``ids`` for indexes at ``checkpoint``: from the table,
        which catches up after the indexes (so an id it does not know has no entry any more);
        from the database only while the table is missing or behind them (then the views
        are not cached: that is for the table, once it is loaded)."""
        found, missing = self.views(ids, banks)
        if missing and self.behind(checkpoint):
            needs_database("the entry table is behind the index")
            found.update(self.banks.get_entries(missing))
            self._read_from_database += len(missing)
            if self._read_from_database > _VIEWS_MAX:
                self.enabled = True  # loaded at the next refresh
        return found

    def views(
        self, ids: set[int], banks: Mapping[int, BankInfo]
    ) -> tuple[dict[int, EntryView], list[int]]:
        """The entries behind ``ids`` as views, and the ids the table does not know."""
        cache = self._views
        table = self.table
        out: dict[int, EntryView] = {}
        missing: list[int] = []
        for i in ids:
            view = cache.get(i)
            if view is None:
                meta = table.get(i) if table is not None else None
                if meta is None:
                    missing.append(i)
                    continue
                view = _view(meta, banks)
                if len(cache) >= _VIEWS_MAX:
                    cache = self._views = {}
                cache[i] = view
            out[i] = view
        return out, missing


def _view(meta: EntryMeta, banks: Mapping[int, BankInfo]) -> EntryView:
    """An entry table row as the view matching reads (its signal, note and time added, which
    matching does not read, left empty)."""
    bank = banks.get(meta.bank_id)
    return EntryView(
        id=meta.id,
        bank_id=meta.bank_id,
        bank_name=bank.name if bank is not None else "",
        signal_type="",
        signal="",
        category=meta.category,
        tags=list(meta.tags),
        source_id=meta.source_id,
        note=None,
        enabled=meta.enabled,
        removed=meta.removed,
        added_at=_EPOCH,
        disabled_until=meta.disabled_until,
        variant_of=meta.variant_of,
        variant=meta.variant,
    )
