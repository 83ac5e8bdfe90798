"""The installation's signal indexes, kept in step with the database.

One directory per database (``<home>/index/<installation id>/``) holds a live PDQ index and one
digest table per digest type, each a set of immutable, memory-mapped segment files plus a
manifest naming them and the change-log position they reflect. Every process that opens the
directory shares the segments through the page cache; each keeps its own small in-memory delta
and tombstones, caught up from the store's change log. Compaction merges delta and tombstones
into new segments (under a file lock, so two processes never compact at once); the other
processes notice the new manifest and re-map.

The database stays the source of truth: a missing or damaged index is rebuilt from it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from amparo.banks.model import BankInfo, EntryView
from amparo.errors import DatabaseNeededError, IndexCorruptError, InternalError
from amparo.files import open_private, private_dir
from amparo.index import DIGEST_WIDTHS, SegmentedDigestTable, SegmentedPdqIndex
from amparo.index.entries import EntryMeta, EntryTable
from amparo.index.live import MANIFEST, LiveIndex
from amparo.signals import get_signal_type
from amparo.signals.pdq import PdqSignal
from amparo.store import Store
from amparo.store.entry_meta import EntryMetaReader

log = logging.getLogger("amparo.index")

PDQ = PdqSignal.name
"""The one signal type of index kind ``hamming``: its values live in the PDQ index."""
DIGESTS = tuple(DIGEST_WIDTHS)
"""The signal types of index kind ``exact``: one digest table each."""
KINDS = (PDQ, *DIGESTS)
# Compact when the in-memory delta grows past this many entries (or 5% of the index): the
# delta is rebuilt on every change, so it must stay small.
COMPACT_DELTA = 50_000
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


def keys_of(kind: str, values: list[str]) -> NDArray[np.uint8]:
    """Text signals of one kind as the fixed-width byte rows the index stores."""
    width = get_signal_type(kind).key_bytes
    if width is None:
        raise InternalError(
            f"signal type {kind!r} has no fixed-width key"
        )  # callers pass index kinds
    if not values:
        return np.zeros((0, width), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(values)), dtype=np.uint8).reshape(-1, width)


@dataclass(frozen=True)
class KindStatus:
    kind: str
    entries: int
    segments: int
    delta_entries: int
    tombstones: int
    checkpoint: int
    bytes_on_disk: int
    resident_bytes: int


@dataclass(frozen=True)
class Difference:
    kind: str
    missing: list[int]
    """Active entries in the database that the index lacks (would be missed)."""
    extra: list[int]
    """Entries the index holds that are no longer active (filtered at lookup, cost only)."""


class SignalIndexes:
    """The PDQ index and digest tables of one store."""

    def __init__(self, store: Store, index_root: Path, *, build: bool = True) -> None:
        self.store = store
        self.directory = index_root / f"{store.installation_id:016x}"
        self.pdq: SegmentedPdqIndex
        self.digests: dict[str, SegmentedDigestTable] = {}
        self._manifest_marks: dict[str, int] = {}
        self._compacting = threading.Lock()
        private_dir(self.directory)
        self._open(build=build)

    # -- opening and building ----------------------------------------------------------------

    def _path(self, kind: str) -> Path:
        return self.directory / kind

    def _open_kind(self, kind: str) -> LiveIndex[Any]:
        path = self._path(kind)
        if get_signal_type(kind).index_kind == "hamming":
            return SegmentedPdqIndex.open(path, create=True)
        return SegmentedDigestTable.open(kind, path, create=True)

    def _open(self, *, build: bool) -> None:
        try:
            opened = {kind: self._open_kind(kind) for kind in KINDS}
        except IndexCorruptError as exc:
            log.warning("index damaged (%s); rebuilding it from the database", exc.message)
            self._remove_files()
            opened = {kind: self._open_kind(kind) for kind in KINDS}
        self._assign(opened)
        if build and not self._usable():
            with self._lock_files():
                # Another process may have built it while this one waited for the lock.
                self._assign({kind: self._open_kind(kind) for kind in KINDS})
                if not self._usable():
                    self._rebuild_locked()
        self._remember_manifests()

    def _usable(self) -> bool:
        if any(not (self._path(k) / MANIFEST).exists() for k in KINDS):
            return False
        # A checkpoint ahead of the database means the files belong to another database state
        # (restored backup, reset database): they cannot be trusted.
        top = self.store.changes.current_seq()
        return all(ix.checkpoint <= top for ix in self._all().values())

    def _assign(self, opened: dict[str, LiveIndex[Any]]) -> None:
        pdq = opened[PDQ]
        assert isinstance(pdq, SegmentedPdqIndex)
        self.pdq = pdq
        self.digests = {}
        for kind in DIGESTS:
            table = opened[kind]
            assert isinstance(table, SegmentedDigestTable)
            self.digests[kind] = table

    def _all(self) -> dict[str, LiveIndex[Any]]:
        return {PDQ: self.pdq, **self.digests}

    def warm(self) -> None:
        """Fault every mapped segment in and make one lookup in each index (see
        :meth:`LiveIndex.warm`): what a service does once before it reports ready."""
        for index in self._all().values():
            index.warm()

    def _remove_files(self) -> None:
        for kind in KINDS:
            shutil.rmtree(self._path(kind), ignore_errors=True)

    def rebuild(self) -> None:
        """Build every index afresh from the database's active entries and save it."""
        with self._lock_files():
            self._rebuild_locked()
        self._remember_manifests()
        self.catch_up()

    def _rebuild_locked(self) -> None:
        seq = self.store.changes.current_seq()
        fresh: dict[str, LiveIndex[Any]] = {
            PDQ: SegmentedPdqIndex(),
            **{kind: SegmentedDigestTable(kind) for kind in DIGESTS},
        }
        for kind, index in fresh.items():
            ids: list[NDArray[np.int64]] = []
            keys: list[NDArray[np.uint8]] = []
            for batch in self.store.changes.iter_active_signals(kind):
                ids.append(np.fromiter((i for i, _ in batch), dtype=np.int64))
                keys.append(keys_of(kind, [s for _, s in batch]))
            if ids:
                index.apply(np.concatenate(ids), np.concatenate(keys), checkpoint=seq)
            else:
                index.apply(checkpoint=seq)
            index.compact(self._path(kind))
        self._assign(fresh)

    # -- keeping up --------------------------------------------------------------------------

    @property
    def checkpoint(self) -> int:
        return min(ix.checkpoint for ix in self._all().values())

    def _manifest_mark(self, kind: str) -> int:
        try:
            return (self._path(kind) / MANIFEST).stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def _remember_manifests(self) -> None:
        self._manifest_marks = {kind: self._manifest_mark(kind) for kind in KINDS}

    def catch_up(self) -> int:
        """Re-map segments another process compacted, then apply the change log since the
        indexes' checkpoint. Returns how many changes were applied."""
        moved = any(self._manifest_mark(k) != self._manifest_marks.get(k) for k in KINDS)
        if moved and not self._compacting.locked():
            self._assign({kind: self._open_kind(kind) for kind in KINDS})
            self._remember_manifests()
        start = self.checkpoint
        changes = self.store.changes.since(start)
        applied = 0
        for kind, index in self._all().items():
            ups = [(i, s) for i, t, s in changes.upserts if t == kind]
            gone = [i for i, t in changes.removals if t == kind]
            if ups or gone:
                index.apply(
                    np.array([i for i, _ in ups], dtype=np.int64),
                    keys_of(kind, [s for _, s in ups]),
                    np.array(gone, dtype=np.int64),
                    checkpoint=changes.seq,
                )
                applied += len(ups) + len(gone)
            elif changes.seq != index.checkpoint:
                index.apply(checkpoint=changes.seq)
        return applied

    def needs_compaction(self) -> bool:
        for index in self._all().values():
            stats = index.stats()
            limit = max(COMPACT_DELTA, stats.entries // 20)
            if stats.delta_entries + stats.tombstones > limit:
                return True
        return False

    def compact(self) -> bool:
        """Merge deltas and tombstones into new segments. Returns False when another process
        (or thread) is compacting already."""
        if not self._compacting.acquire(blocking=False):
            return False
        try:
            with self._lock_files(blocking=False) as locked:
                if not locked:
                    return False
                for kind, index in self._all().items():
                    index.compact(self._path(kind))
                self._remember_manifests()
                return True
        finally:
            self._compacting.release()

    def compact_in_background(self) -> threading.Thread | None:
        if self._compacting.locked():
            return None
        thread = threading.Thread(target=self.compact, name="amparo-compact", daemon=True)
        thread.start()
        return thread

    @contextmanager
    def _lock_files(self, *, blocking: bool = True) -> Iterator[bool]:
        lock = open_private(self.directory / ".lock", os.O_RDWR | os.O_CREAT)
        with os.fdopen(lock, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- reporting ---------------------------------------------------------------------------

    def status(self) -> list[KindStatus]:
        out = []
        for kind, index in self._all().items():
            s = index.stats()
            out.append(
                KindStatus(
                    kind=kind,
                    entries=s.entries,
                    segments=s.segments,
                    delta_entries=s.delta_entries,
                    tombstones=s.tombstones,
                    checkpoint=s.checkpoint,
                    bytes_on_disk=s.bytes_on_disk,
                    resident_bytes=s.resident_bytes,
                )
            )
        return out

    def verify(self) -> list[Difference]:
        """Compare each index with the database's active entries (ids and hashes)."""
        self.catch_up()
        differences = []
        for kind, index in self._all().items():
            ids, keys = index.items()
            held = dict(zip(ids.tolist(), (k.tobytes() for k in keys), strict=True))
            missing: list[int] = []
            for batch in self.store.changes.iter_active_signals(kind):
                batch_keys = keys_of(kind, [s for _, s in batch])
                for (entry_id, _), key in zip(batch, batch_keys, strict=True):
                    if held.pop(entry_id, None) != key.tobytes():
                        missing.append(entry_id)
            extra = sorted(held)
            if missing or extra:
                differences.append(Difference(kind, missing, extra))
        return differences


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

    def load_in_background(self) -> threading.Thread:
        """Turn the table on and load it in a thread (a service's start-up stays short;
        lookups read the database until it is there, and the next refresh catches it up)."""
        self.enabled = True
        thread = threading.Thread(target=self._load, name="amparo-entry-table", daemon=True)
        thread.start()
        return thread

    def _load(self) -> int:
        with self._loading:
            if self.table is not None:
                return 0
            table = EntryTable()
            top = self.changes.current_seq()
            for batch in self.reader.iter_all():
                table.apply_raw(batch)
            table.apply(checkpoint=top)
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
