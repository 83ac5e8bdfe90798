"""The live PDQ index and digest table: see :mod:`amparo.index.live` for the update model."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from amparo.errors import InternalError
from amparo.files import private_dir
from amparo.index import mih
from amparo.index.base import IndexHits, check_queries
from amparo.index.digest import DIGEST_WIDTHS, DigestHits, DigestSegment, check_digests
from amparo.index.live import (
    MANIFEST,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    LiveIndex,
    alive,
    manifest_exists,
)
from amparo.index.pdq_segment import DEFAULT_SCAN_RATIO, PdqSegment
from amparo.index.segment_file import write_atomic
from amparo.signals.pdq import PDQ_BYTES


def manifest_files(directory: Path) -> list[str]:
    """Segment files the manifest in ``directory`` names (none if it is absent or unreadable)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        doc = json.loads((directory / MANIFEST).read_text())
        return [str(s["file"]) for s in doc["segments"] if Path(str(s["file"])).name == s["file"]]
    return []


def write_manifest(
    directory: Path, kind: str, checkpoint: int, name: str, entries: int, size: int
) -> None:
    """Write the manifest naming one segment, as :meth:`LiveIndex.compact` does."""
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "kind": kind,
        "checkpoint": int(checkpoint),
        "segments": [{"file": name, "entries": entries, "bytes": size}],
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_atomic(directory / MANIFEST, [json.dumps(manifest, indent=2).encode()])


class SegmentedPdqIndex(LiveIndex[PdqSegment]):
    """Exact PDQ radius search with live updates; implements :class:`PdqIndex`.

    ``SegmentedPdqIndex()`` is an empty in-memory index; :meth:`open` maps one saved in a
    directory. ``chunks`` fixes the multi-index chunk count (default: chosen from the data).
    """

    key_width = PDQ_BYTES

    def __init__(
        self,
        directory: Path | None = None,
        *,
        chunks: int | None = None,
        scan_ratio: float = DEFAULT_SCAN_RATIO,
    ) -> None:
        super().__init__("pdq", directory)
        self.chunks = chunks
        self.scan_ratio = scan_ratio

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        create: bool = False,
        verify: bool = False,
        chunks: int | None = None,
        scan_ratio: float = DEFAULT_SCAN_RATIO,
    ) -> SegmentedPdqIndex:
        """Open the index saved in ``directory`` (empty if ``create`` and none is there).

        ``verify`` also checks every segment's payload checksum (reads every byte).
        """
        index = cls(directory, chunks=chunks, scan_ratio=scan_ratio)
        if not (create and not manifest_exists(directory)):
            index._load(verify=verify)
        return index

    @classmethod
    def bulk_build(
        cls,
        directory: Path,
        ids: NDArray[np.int64],
        hashes: NDArray[np.uint8],
        *,
        checkpoint: int = 0,
        chunks: int | None = None,
    ) -> SegmentedPdqIndex:
        """Build one segment from unique ``ids`` and their hashes, save it as the whole index
        in ``directory`` (replacing what was there) and open it.

        Equivalent to ``apply`` then ``compact`` on an empty index, without the in-memory
        delta segment those build first: one build, so peak memory at 100M entries is about
        10 GB (the input, the packed tables and the sort's scratch) instead of twice that.
        Ids in ascending order (as read from the database) are used without a sorted copy.
        """
        private_dir(directory)
        segment = PdqSegment.build(ids, hashes, chunks=chunks)
        name = f"pdq-{uuid.uuid4().hex[:16]}.seg"
        size = segment.write(directory / name)
        entries = len(segment)
        del segment
        old = manifest_files(directory)
        write_manifest(directory, "pdq", checkpoint, name, entries, size)
        for stale in old:
            if stale != name:
                (directory / stale).unlink(missing_ok=True)
        return cls.open(directory, chunks=chunks)

    def _build(self, ids: NDArray[np.int64], keys: NDArray[np.uint8]) -> PdqSegment:
        return PdqSegment.build(ids, keys, chunks=self.chunks)

    def _open_segment(self, path: Path, verify: bool) -> PdqSegment:
        return PdqSegment.open(path, verify=verify)

    def _items(self, segment: PdqSegment) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
        return np.asarray(segment.ids, dtype=np.int64), np.asarray(segment.hashes)

    def _contains(self, segment: PdqSegment, ids: NDArray[np.int64]) -> NDArray[np.bool_]:
        return segment.contains(ids)

    def _write(self, segment: PdqSegment, path: Path) -> int:
        return segment.write(path)

    def _nbytes(self, segment: PdqSegment) -> int:
        return segment.nbytes

    def _len(self, segment: PdqSegment) -> int:
        return len(segment)

    def add(self, ids: NDArray[np.int64], hashes: NDArray[np.uint8]) -> None:
        """Add entries (``hashes`` is ``(n, 32)`` uint8); re-adding an id replaces it."""
        self.apply(add_ids=ids, add_keys=hashes)

    def remove(self, ids: NDArray[np.int64]) -> None:
        """Remove entries by id; unknown ids are ignored."""
        self.apply(remove_ids=ids)

    def _warm_lookup(self) -> None:
        queries = np.random.default_rng().integers(0, 256, (8, PDQ_BYTES), dtype=np.uint8)
        self.search(queries[:1], 31)  # one query: the serial kernel
        self.search(queries, 31)  # a few: the parallel one

    def search(self, queries: NDArray[np.uint8], radius: int = 31) -> IndexHits:
        """Every entry within ``radius`` bits of each query (``(n, 32)`` uint8), exactly."""
        q = check_queries(queries, radius)
        words = mih.as_words(q)
        st = self._state
        parts_q, parts_i, parts_d = [], [], []
        for segment in st.segments:
            qpos, rows, dist = segment.search_rows(words, radius, scan_ratio=self.scan_ratio)
            ids = segment.ids_at(rows)
            if st.tombstones.size:
                keep = alive(ids, st.tombstones)
                qpos, ids, dist = qpos[keep], ids[keep], dist[keep]
            parts_q.append(qpos)
            parts_i.append(ids)
            parts_d.append(dist)
        if st.delta is not None:
            qpos, rows, dist = st.delta.search_rows(words, radius, scan_ratio=self.scan_ratio)
            parts_q.append(qpos)
            parts_i.append(st.delta.ids_at(rows))
            parts_d.append(dist)
        if not parts_q:
            return IndexHits.empty()
        if len(parts_q) == 1:  # one segment, no delta: nothing to join
            return IndexHits(parts_q[0], parts_i[0], parts_d[0]).sorted()
        return IndexHits(
            np.concatenate(parts_q), np.concatenate(parts_i), np.concatenate(parts_d)
        ).sorted()


class SegmentedDigestTable(LiveIndex[DigestSegment]):
    """Exact md5/sha1/sha256 lookups with live updates (delta + tombstones)."""

    def __init__(self, algorithm: str, directory: Path | None = None) -> None:
        if algorithm not in DIGEST_WIDTHS:  # the algorithms are Amparo's own constants
            raise InternalError(f"unknown digest {algorithm!r}; expected one of {DIGEST_WIDTHS}")
        self.key_width = DIGEST_WIDTHS[algorithm]
        super().__init__(algorithm, directory)
        self.algorithm = algorithm
        # Sorted ids of each mapped segment, built on the first removal that needs them.
        self._sorted_ids: dict[int, NDArray[np.int64]] = {}

    @classmethod
    def open(
        cls, algorithm: str, directory: Path, *, create: bool = False, verify: bool = False
    ) -> SegmentedDigestTable:
        """Open the table saved in ``directory`` (empty if ``create`` and none is there)."""
        table = cls(algorithm, directory)
        if not (create and not manifest_exists(directory)):
            table._load(verify=verify)
        return table

    def _build(self, ids: NDArray[np.int64], keys: NDArray[np.uint8]) -> DigestSegment:
        return DigestSegment.build(self.algorithm, ids, keys)

    def _open_segment(self, path: Path, verify: bool) -> DigestSegment:
        return DigestSegment.open(path, self.algorithm, verify=verify)

    def _items(self, segment: DigestSegment) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
        return segment.ids, segment.digests

    def _contains(self, segment: DigestSegment, ids: NDArray[np.int64]) -> NDArray[np.bool_]:
        # Records are in digest order; membership by id needs a sorted copy of the ids,
        # made once per mapped segment (8 bytes an entry) and only when removals arrive.
        key = id(segment)
        if key not in self._sorted_ids:
            self._sorted_ids = {key: np.sort(segment.ids)}
        sorted_ids = self._sorted_ids[key]
        if sorted_ids.size == 0:
            return np.zeros(ids.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
        return np.asarray(sorted_ids[pos] == ids)

    def _write(self, segment: DigestSegment, path: Path) -> int:
        return segment.write(path)

    def _nbytes(self, segment: DigestSegment) -> int:
        return segment.nbytes

    def _len(self, segment: DigestSegment) -> int:
        return len(segment)

    def add(self, ids: NDArray[np.int64], digests: NDArray[np.uint8]) -> None:
        """Add entries (``digests`` is ``(n, width)`` uint8); re-adding an id replaces it."""
        self.apply(add_ids=ids, add_keys=digests)

    def remove(self, ids: NDArray[np.int64]) -> None:
        """Remove entries by id; unknown ids are ignored."""
        self.apply(remove_ids=ids)

    def _warm_lookup(self) -> None:
        self.lookup(np.zeros((1, self.key_width), dtype=np.uint8))

    def lookup(self, digests: NDArray[np.uint8]) -> DigestHits:
        """Every ``(query position, entry id)`` whose digest equals the query's."""
        q = check_digests(digests, self.key_width)
        st = self._state
        parts_q, parts_i = [], []
        for segment in st.segments:
            hits = segment.lookup(q)
            keep = alive(hits.ids, st.tombstones)
            parts_q.append(hits.query[keep])
            parts_i.append(hits.ids[keep])
        if st.delta is not None:
            hits = st.delta.lookup(q)
            parts_q.append(hits.query)
            parts_i.append(hits.ids)
        if not parts_q:
            return DigestHits.empty()
        return DigestHits(np.concatenate(parts_q), np.concatenate(parts_i)).sorted()
