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
