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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from amparo.errors import IndexCorruptError, InternalError
from amparo.files import open_private, private_dir
from amparo.index import DIGEST_WIDTHS, SegmentedDigestTable, SegmentedPdqIndex
from amparo.index.live import MANIFEST, LiveIndex
from amparo.signals import get_signal_type
from amparo.signals.pdq import PdqSignal
from amparo.store import Store
from amparo.store.changelog import PAGE
from amparo.store.entry_meta import (  # the entry table, kept beside the indexes
    EntryTableSync as EntryTableSync,
)
from amparo.store.entry_meta import memory_only as memory_only
from amparo.store.entry_meta import memory_only_now as memory_only_now
from amparo.store.entry_meta import needs_database as needs_database

log = logging.getLogger("amparo.index")

PDQ = PdqSignal.name
"""The one signal type of index kind ``hamming``: its values live in the PDQ index."""
DIGESTS = tuple(DIGEST_WIDTHS)
"""The signal types of index kind ``exact``: one digest table each."""
KINDS = (PDQ, *DIGESTS)
# Compact when the in-memory delta grows past this many entries (or 5% of the index): the
# delta is rebuilt on every change, so it must stay small.
COMPACT_DELTA = 50_000


def key_width(kind: str) -> int:
    """Bytes of one key of an index kind."""
    width = get_signal_type(kind).key_bytes
    if width is None:
        raise InternalError(f"signal type {kind!r} has no fixed-width key")  # index kinds do
    return width


def keys_of(kind: str, values: list[str]) -> NDArray[np.uint8]:
    """Text signals of one kind as the fixed-width byte rows the index stores."""
    width = key_width(kind)
    if not values:
        return np.zeros((0, width), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(values)), dtype=np.uint8).reshape(-1, width)


class KeyArrays:
    """Ids and fixed-width keys gathered page by page into arrays that grow geometrically
    (doubling) past their first capacity, so n rows cost n * (8 + width) bytes, amortized."""

    def __init__(self, width: int, capacity: int = 0) -> None:
        self.width = width
        self.size = 0
        self._ids = np.empty(capacity, dtype=np.int64)
        self._keys = np.empty((capacity, width), dtype=np.uint8)

    def add(self, ids: NDArray[np.int64], keys: NDArray[np.uint8] | None = None) -> None:
        end = self.size + ids.shape[0]
        if end > self._ids.shape[0]:
            capacity = max(end, 2 * self._ids.shape[0])
            ids_grown = np.empty(capacity, dtype=np.int64)
            ids_grown[: self.size] = self._ids[: self.size]
            keys_grown = np.empty((capacity, self.width), dtype=np.uint8)
            keys_grown[: self.size] = self._keys[: self.size]
            self._ids, self._keys = ids_grown, keys_grown
        self._ids[self.size : end] = ids
        if keys is not None:
            self._keys[self.size : end] = keys.reshape(-1, self.width)
        self.size = end

    def arrays(self) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
        """The rows added so far (views, not copies)."""
        return self._ids[: self.size], self._keys[: self.size]


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

    def __init__(
        self, store: Store, index_root: Path, *, build: bool = True, page: int = PAGE
    ) -> None:
        self.store = store
        self.page = page
        """Rows read from the store at a time (rebuild and catch-up)."""
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
        fresh: dict[str, LiveIndex[Any]] = {}
        for kind in KINDS:
            ids, keys = self._read_active(kind)
            if kind == PDQ:
                # One build straight into the directory: no in-memory delta built first.
                fresh[kind] = SegmentedPdqIndex.bulk_build(
                    self._path(kind), ids, keys, checkpoint=seq
                )
            else:
                table = SegmentedDigestTable(kind)
                table.apply(ids, keys, checkpoint=seq)
                table.compact(self._path(kind))
                fresh[kind] = table
            del ids, keys
        self._assign(fresh)

    def _read_active(self, kind: str) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
        """Ids (ascending) and keys of every active entry of ``kind``, read page by page into
        arrays sized from a count (grown if entries arrive meanwhile): no row kept as Python
        objects, so a rebuild's memory is these arrays plus the build."""
        rows = KeyArrays(key_width(kind), self.store.changes.count_active(kind))
        for ids, raw in self.store.changes.active_key_pages(kind, self.page):
            rows.add(np.asarray(ids, dtype=np.int64), np.frombuffer(raw, dtype=np.uint8))
        return rows.arrays()

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
        width = {kind: key_width(kind) for kind in KINDS}
        ups = {kind: KeyArrays(width[kind]) for kind in KINDS}
        gone = {kind: KeyArrays(0) for kind in KINDS}
        top = start
        # Read in pages: a huge change log (a big import) becomes arrays, not Python rows.
        for part in self.store.changes.pages_since(start, KINDS, page=self.page):
            top = part.seq
            signals: dict[str, tuple[list[int], list[str]]] = {k: ([], []) for k in KINDS}
            for entry_id, kind, signal in part.upserts:
                signals[kind][0].append(entry_id)
                signals[kind][1].append(signal)
            removed: dict[str, list[int]] = {k: [] for k in KINDS}
            for entry_id, kind in part.removals:
                removed[kind].append(entry_id)
            for kind in KINDS:
                if signals[kind][0]:
                    ids = np.array(signals[kind][0], dtype=np.int64)
                    ups[kind].add(ids, keys_of(kind, signals[kind][1]))
                if removed[kind]:
                    gone[kind].add(np.array(removed[kind], dtype=np.int64))
        applied = 0
        for kind, index in self._all().items():
            add_ids, add_keys = ups[kind].arrays()
            remove_ids, _ = gone[kind].arrays()
            if add_ids.size or remove_ids.size:
                index.apply(add_ids, add_keys, remove_ids, checkpoint=top)
                applied += int(add_ids.size + remove_ids.size)
            elif top != index.checkpoint:
                index.apply(checkpoint=top)
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
            # Both sides as arrays (the database's read in pages), compared by sorted id.
            db_ids, db_keys = self._read_active(kind)
            ix_ids, ix_keys = index.items()
            common, at_db, at_ix = np.intersect1d(db_ids, ix_ids, return_indices=True)
            differs = (db_keys[at_db] != ix_keys[at_ix]).any(axis=1)
            missing = np.union1d(np.setdiff1d(db_ids, ix_ids), common[differs])
            extra = np.setdiff1d(ix_ids, db_ids)
            if missing.size or extra.size:
                differences.append(Difference(kind, missing.tolist(), extra.tolist()))
        return differences
