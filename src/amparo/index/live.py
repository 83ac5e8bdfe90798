"""Live indexes: immutable mapped segments + an in-memory delta + tombstones, in a directory.

The directory holds segment files and ``manifest.json``, which names the segments and the
``checkpoint`` (the database change-log position the segments reflect). Changes go through
:meth:`LiveIndex.apply`: added entries land in a small in-memory delta segment (rebuilt on
each apply, milliseconds for thousands of entries), removed or replaced ids that live in a
mapped segment are recorded as tombstones and filtered from results. :meth:`compact` merges
everything into one new segment file and rewrites the manifest (temp file + fsync + rename),
then drops the old files. The delta and tombstones are not persisted: after a restart the
index reopens at the manifest's checkpoint and the caller replays the change log from there.

Searches read an immutable snapshot of the state, so they never block on writers; writers
(``apply``/``compact``) serialise on a lock. ``compact`` builds the new segment without the
lock and then replays the changes applied meanwhile, so updates stay live during it.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from amparo.errors import IndexCorruptError, InternalError
from amparo.files import private_dir
from amparo.index.segment_file import REBUILD_HINT, SegmentFile, write_atomic

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "amparo-index"
MANIFEST_VERSION = 1

S = TypeVar("S")


def _damaged(path: Path, problem: str) -> IndexCorruptError:
    return IndexCorruptError(f"index manifest {path} is damaged: {problem}", hint=REBUILD_HINT)


@dataclass(frozen=True)
class IndexStats:
    """What an index holds and costs."""

    kind: str
    entries: int
    segments: int
    segment_entries: int
    delta_entries: int
    tombstones: int
    checkpoint: int
    bytes_on_disk: int
    resident_bytes: int  # arrays mapped or held in memory, were every page touched


@dataclass(frozen=True)
class _State(Generic[S]):
    segments: tuple[S, ...]
    tombstones: NDArray[np.int64]  # sorted ids removed from ``segments``
    delta_ids: NDArray[np.int64]
    delta_keys: NDArray[np.uint8]
    delta: S | None
    checkpoint: int
    files: tuple[str, ...] = field(default=())


def alive(ids: NDArray[np.int64], tombstones: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Mask of ``ids`` not in the sorted ``tombstones``."""
    if tombstones.size == 0 or ids.size == 0:
        return np.ones(ids.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(tombstones, ids), tombstones.size - 1)
    return np.asarray(tombstones[pos] != ids)


def _last_occurrence(ids: NDArray[np.int64]) -> NDArray[np.intp]:
    """Positions keeping the last of each repeated id (a later add replaces an earlier)."""
    _, first_in_reversed = np.unique(ids[::-1], return_index=True)
    return np.sort(ids.shape[0] - 1 - first_in_reversed)


class LiveIndex(ABC, Generic[S]):
    """Shared machinery of :class:`SegmentedPdqIndex` and :class:`SegmentedDigestTable`."""

    key_width: int

    def __init__(self, kind: str, directory: Path | None = None) -> None:
        self.kind = kind
        self.directory = Path(directory) if directory is not None else None
        empty_ids = np.zeros(0, dtype=np.int64)
        self._state: _State[S] = _State(
            (), empty_ids, empty_ids, np.zeros((0, self.key_width), np.uint8), None, 0
        )
        self._lock = threading.Lock()
        self._compacting = threading.Lock()  # one compaction at a time owns the journal
        self._journal: list[tuple[NDArray[np.int64], NDArray[np.uint8], NDArray[np.int64]]] | None
        self._journal = None

    # -- what each kind supplies ------------------------------------------------------------

    @abstractmethod
    def _build(self, ids: NDArray[np.int64], keys: NDArray[np.uint8]) -> S: ...

    @abstractmethod
    def _open_segment(self, path: Path, verify: bool) -> S: ...

    @abstractmethod
    def _items(self, segment: S) -> tuple[NDArray[np.int64], NDArray[np.uint8]]: ...

    @abstractmethod
    def _contains(self, segment: S, ids: NDArray[np.int64]) -> NDArray[np.bool_]: ...

    @abstractmethod
    def _write(self, segment: S, path: Path) -> int: ...

    @abstractmethod
    def _nbytes(self, segment: S) -> int: ...

    @abstractmethod
    def _len(self, segment: S) -> int: ...

    # -- opening ------------------------------------------------------------------------------

    def _load(self, *, verify: bool) -> None:
        assert self.directory is not None
        path = self.directory / MANIFEST
        for attempt in range(3):
            try:
                doc = json.loads(path.read_text())
                if doc.get("format") != MANIFEST_FORMAT or doc.get("version") != MANIFEST_VERSION:
                    raise _damaged(path, f"unsupported manifest format {doc.get('format')!r}")
                if doc["kind"] != self.kind:
                    raise _damaged(path, f"holds a {doc['kind']!r} index, expected {self.kind!r}")
                files = tuple(str(s["file"]) for s in doc["segments"])
                if any(Path(f).name != f for f in files):
                    raise _damaged(path, "segment names must be plain file names")
                segments = tuple(self._open_segment(self.directory / f, verify) for f in files)
                checkpoint = int(doc["checkpoint"])
                break
            except FileNotFoundError as exc:
                # A compaction in another process replaced the manifest and removed the
                # segments we were about to open: read the new manifest.
                if not path.exists():
                    raise
                if attempt == 2:
                    raise IndexCorruptError(
                        f"index in {self.directory} names a missing segment: {exc}",
                        hint=REBUILD_HINT,
                    ) from exc
            except (ValueError, KeyError, TypeError) as exc:  # JSON, int() and lookups
                raise _damaged(path, str(exc)) from exc
        empty = np.zeros(0, dtype=np.int64)
        self._state = _State(
            segments, empty, empty, np.zeros((0, self.key_width), np.uint8), None, checkpoint, files
        )

    # -- reading ----------------------------------------------------------------------------

    def warm(self) -> None:
        """Fault the mapped segments in and make one lookup (which loads the compiled
        kernels), so a new process's first real lookups are as fast as the rest."""
        for segment in self._state.segments:
            file = getattr(segment, "file", None)
            if isinstance(file, SegmentFile):
                file.populate()
        self._warm_lookup()

    def _warm_lookup(self) -> None:
        """One throw-away lookup of each kind the index answers."""

    def __len__(self) -> int:
        st = self._state
        return sum(self._len(s) for s in st.segments) - int(st.tombstones.size) + len(st.delta_ids)

    @property
    def checkpoint(self) -> int:
        """The change-log position this index reflects (set by :meth:`apply`)."""
        return self._state.checkpoint

    def stats(self) -> IndexStats:
        st = self._state
        on_disk = 0
        if self.directory is not None:
            on_disk = sum(
                (self.directory / f).stat().st_size
                for f in st.files
                if (self.directory / f).exists()
            )
        resident = sum(self._nbytes(s) for s in st.segments)
        resident += self._nbytes(st.delta) if st.delta is not None else 0
        resident += st.tombstones.nbytes + st.delta_ids.nbytes + st.delta_keys.nbytes
        return IndexStats(
            kind=self.kind,
            entries=len(self),
            segments=len(st.segments),
            segment_entries=sum(self._len(s) for s in st.segments),
            delta_entries=len(st.delta_ids),
            tombstones=int(st.tombstones.size),
            checkpoint=st.checkpoint,
            bytes_on_disk=on_disk,
            resident_bytes=resident,
        )

    # -- writing ----------------------------------------------------------------------------

    def apply(
        self,
        add_ids: NDArray[np.int64] | None = None,
        add_keys: NDArray[np.uint8] | None = None,
        remove_ids: NDArray[np.int64] | None = None,
        checkpoint: int | None = None,
    ) -> None:
        """Apply one batch of changes; visible to the next search when this returns.

        Removals are applied before adds; adding an id that exists replaces its entry;
        removing an unknown id does nothing. ``checkpoint``, when given, becomes
        :attr:`checkpoint` (the change-log position these changes bring the index to).
        """
        ids = np.asarray(add_ids if add_ids is not None else [], dtype=np.int64).reshape(-1)
        keys = np.asarray(
            add_keys if add_keys is not None else np.zeros((0, self.key_width)), dtype=np.uint8
        ).reshape(-1, self.key_width)
        removes = np.asarray(remove_ids if remove_ids is not None else [], dtype=np.int64)
        removes = removes.reshape(-1)
        if ids.shape[0] != keys.shape[0]:
            raise InternalError("add_ids and add_keys differ in length")  # a caller's bug
        with self._lock:
            if self._journal is not None:
                self._journal.append((ids, keys, removes))
            self._state = self._applied(self._state, ids, keys, removes, checkpoint)

    def _applied(
        self,
        st: _State[S],
        ids: NDArray[np.int64],
        keys: NDArray[np.uint8],
        removes: NDArray[np.int64],
        checkpoint: int | None,
    ) -> _State[S]:
        keep = _last_occurrence(ids)
        ids, keys = ids[keep], keys[keep]
        changed = np.unique(np.concatenate([removes, ids]))
        tombstones = st.tombstones
        if changed.size:
            fresh = changed[alive(changed, tombstones)]
            in_segments = np.zeros(fresh.shape, dtype=bool)
            for segment in st.segments:
                in_segments |= self._contains(segment, fresh)
            if in_segments.any():
                tombstones = np.union1d(tombstones, fresh[in_segments])
        delta_ids, delta_keys, delta = st.delta_ids, st.delta_keys, st.delta
        if changed.size and (delta_ids.size or ids.size):
            stay = ~np.isin(delta_ids, changed)
            delta_ids = np.concatenate([delta_ids[stay], ids])
            delta_keys = np.concatenate([delta_keys[stay], keys])
            delta = self._build(delta_ids, delta_keys) if delta_ids.size else None
        return _State(
            st.segments,
            tombstones,
            delta_ids,
            delta_keys,
            delta,
            st.checkpoint if checkpoint is None else int(checkpoint),
            st.files,
        )

    def compact(self, directory: Path | None = None) -> Path:
        """Merge segments, delta and tombstones into one new segment file; return it.

        Writes the segment and then the manifest atomically into ``directory`` (default:
        the directory the index was opened from, which ``directory`` then replaces), and
        removes the segment files the old manifest named. Changes applied while this runs
        are kept (replayed onto the new state).
        """
        target = Path(directory) if directory is not None else self.directory
        if target is None:
            raise InternalError("compact() needs a directory for an index that has none")
        private_dir(target)
        with self._compacting:
            return self._compact(target)

    def _compact(self, target: Path) -> Path:
        with self._lock:
            st = self._state
            self._journal = []
        try:
            parts_i, parts_k = [], []
            for segment in st.segments:
                seg_ids, seg_keys = self._items(segment)
                keep = alive(seg_ids, st.tombstones)
                parts_i.append(seg_ids[keep])
                parts_k.append(seg_keys[keep])
            parts_i.append(st.delta_ids)
            parts_k.append(st.delta_keys)
            merged = self._build(np.concatenate(parts_i), np.concatenate(parts_k))
            name = f"{self.kind}-{uuid.uuid4().hex[:16]}.seg"
            size = self._write(merged, target / name)
            manifest = {
                "format": MANIFEST_FORMAT,
                "version": MANIFEST_VERSION,
                "kind": self.kind,
                "checkpoint": st.checkpoint,
                "segments": [{"file": name, "entries": self._len(merged), "bytes": size}],
                "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            write_atomic(target / MANIFEST, [json.dumps(manifest, indent=2).encode()])
            opened = self._open_segment(target / name, False)
        except BaseException:
            with self._lock:
                self._journal = None
            raise
        with self._lock:
            empty = np.zeros(0, dtype=np.int64)
            new: _State[S] = _State(
                (opened,), empty, empty, np.zeros((0, self.key_width), np.uint8), None,
                st.checkpoint, (name,),
            )  # fmt: skip
            journal, self._journal = self._journal or [], None
            for ids, keys, removes in journal:
                new = self._applied(new, ids, keys, removes, None)
            self._state = _State(
                new.segments, new.tombstones, new.delta_ids, new.delta_keys, new.delta,
                self._state.checkpoint, new.files,
            )  # fmt: skip
            old_dir, self.directory = self.directory, target
        if old_dir == target:
            for old in st.files:
                if old != name:
                    # Other processes that mapped the old file keep reading it until they
                    # reopen; unlinking does not disturb an existing mapping.
                    (target / old).unlink(missing_ok=True)
        return target / name

    def save(self, directory: Path | None = None) -> Path:
        """Persist the current state (same as :meth:`compact`)."""
        return self.compact(directory)

    def items(self) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
        """Every live ``(id, key)`` pair: segments less tombstones, then the delta."""
        st = self._state
        parts_i, parts_k = [], []
        for segment in st.segments:
            seg_ids, seg_keys = self._items(segment)
            keep = alive(seg_ids, st.tombstones) & ~np.isin(seg_ids, st.delta_ids)
            parts_i.append(np.asarray(seg_ids[keep]))
            parts_k.append(np.asarray(seg_keys[keep]))
        parts_i.append(st.delta_ids)
        parts_k.append(st.delta_keys)
        return np.concatenate(parts_i), np.concatenate(parts_k)

    def verify(self) -> None:
        """Check every segment file's payload checksum (reads every byte)."""
        for segment in self._state.segments:
            file: Any = getattr(segment, "file", None)
            if file is not None:
                file.verify()


def manifest_exists(directory: Path) -> bool:
    """Whether ``directory`` holds an index manifest."""
    return os.path.exists(Path(directory) / MANIFEST)
