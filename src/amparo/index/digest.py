"""Exact-digest table: md5, sha1 and sha256 lookups over sorted fixed-width records.

Entries are sorted by digest. A table of bucket starts indexed by the digest's top
``table_bits`` bits finds a digest's bucket in one read; the first ``table_bits // 8`` bytes
are then implied by the bucket and not stored. Each record holds the rest of the digest and
the entry id, stored as an offset from the smallest id in the fewest bytes that hold the
largest offset (3 bytes for up to 16 million ids, 4 for up to 4 billion). A 100-million-entry
md5 table is 13 + 4 bytes a record plus a 64 MiB bucket table: 1.1 times the raw digests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from amparo.errors import InternalError
from amparo.index._jit import jit, pjit, prange
from amparo.index.segment_file import SegmentFile, corrupt, write_segment
from amparo.signals import signal_types

DIGEST_WIDTHS: dict[str, int] = {
    st.name: st.key_bytes for st in signal_types("exact") if st.key_bytes is not None
}
"""Key width in bytes of each exact signal type (md5 16, sha1 20, sha256 32)."""
_INITIAL_CAP = 4


@dataclass(frozen=True)
class DigestHits:
    """Lookup results sorted by query position then id: ``ids[i]`` matched ``query[i]``."""

    query: NDArray[np.int64]
    ids: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def empty(cls) -> DigestHits:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def sorted(self) -> DigestHits:
        order = np.lexsort((self.ids, self.query))
        return DigestHits(self.query[order], self.ids[order])


def table_bits_for(n: int) -> int:
    """About four entries a bucket: the table costs about one byte an entry."""
    return int(min(32, max(8, int(np.log2(max(n, 1) / 4)) if n >= 4 else 8)))


def id_bytes_for(span: int) -> int:
    """Bytes needed for id offsets up to ``span``."""
    return max(1, (int(span).bit_length() + 7) // 8)


def check_digests(digests: NDArray[np.uint8], width: int) -> NDArray[np.uint8]:
    d = np.ascontiguousarray(digests, dtype=np.uint8)
    if d.ndim == 1:
        d = d.reshape(1, -1) if d.size else d.reshape(0, width)
    if d.ndim != 2 or d.shape[1] != width:
        # Digests come from the hashers or the database's fixed-width columns: a bug.
        raise InternalError(f"digests must have shape (n, {width}), got {digests.shape}")
    return d


def _prefixes(digests: NDArray[np.uint8], bits: int) -> NDArray[np.int64]:
    """Top ``bits`` bits of each digest (big-endian)."""
    head = np.zeros((digests.shape[0], 8), dtype=np.uint8)
    take = min(8, digests.shape[1])
    head[:, :take] = digests[:, :take]
    return (head.view(">u8").reshape(-1) >> np.uint64(64 - bits)).astype(np.int64)


@jit
def _fill_offsets(prefixes: NDArray[np.int64], offsets: NDArray[np.int64]) -> None:
    for p in prefixes:
        offsets[p + 1] += 1
    for i in range(offsets.shape[0] - 1):
        offsets[i + 1] += offsets[i]


@jit
def _compare(
    records: NDArray[np.uint8], r: np.int64, q: NDArray[np.uint8], qi: int, skip: int
) -> int:
    for b in range(q.shape[1] - skip):
        x = records[r, b]
        y = q[qi, skip + b]
        if x != y:
            return -1 if x < y else 1
    return 0


@pjit
def _lookup(
    records: NDArray[np.uint8],
    offsets: NDArray[Any],
    table_bits: int,
    skip: int,
    id_bytes: int,
    id_base: int,
    prefixes: NDArray[np.int64],
    queries: NDArray[np.uint8],
    out_ids: NDArray[np.int64],
    counts: NDArray[np.int64],
) -> None:
    cap = out_ids.shape[1]
    suffix = queries.shape[1] - skip
    for qi in prange(queries.shape[0]):
        lo = np.int64(offsets[prefixes[qi]])
        hi = np.int64(offsets[prefixes[qi] + 1])
        while lo < hi:  # first record >= query within the bucket
            mid = np.int64((lo + hi) >> 1)
            if _compare(records, mid, queries, qi, skip) < 0:
                lo = np.int64(mid + 1)
            else:
                hi = mid
        end = np.int64(offsets[prefixes[qi] + 1])
        c = 0
        while lo < end and _compare(records, lo, queries, qi, skip) == 0:
            if c < cap:
                value = np.int64(0)
                for b in range(id_bytes):
                    value |= np.int64(records[lo, suffix + b]) << np.int64(8 * b)
                out_ids[qi, c] = id_base + value
            c += 1
            lo = np.int64(lo + 1)
        counts[qi] = c


def _digest_order(cols: NDArray[np.uint64], ids: NDArray[np.int64]) -> NDArray[np.intp]:
    """Order by digest then id. Sorting on the first 8 bytes settles almost every pair;
    only rows that tie there (duplicate digests, mostly) are sorted on the full key."""
    order = np.argsort(cols[:, 0], kind="stable")
    head = cols[order, 0]
    ties = np.flatnonzero(head[1:] == head[:-1])
    if ties.size:
        # Tied rows form contiguous runs; sorting them all by the full key keeps each run
        # in place, because runs are already ordered by their shared first word.
        at = np.unique(np.concatenate([ties, ties + 1]))
        tied = order[at]
        keys = [cols[tied, c] for c in range(cols.shape[1] - 1, -1, -1)]
        order[at] = tied[np.lexsort((ids[tied], *keys))]
    return order


class DigestSegment:
    """An immutable exact-match table of ``(id, digest)`` entries, in memory or mapped."""

    def __init__(
        self,
        algorithm: str,
        records: NDArray[np.uint8],
        offsets: NDArray[Any],
        *,
        table_bits: int,
        id_bytes: int,
        id_base: int,
        file: SegmentFile | None = None,
    ) -> None:
        if algorithm not in DIGEST_WIDTHS:  # the algorithms are Amparo's own constants
            raise InternalError(f"unknown digest {algorithm!r}; expected one of {DIGEST_WIDTHS}")
        self.algorithm = algorithm
        self.width = DIGEST_WIDTHS[algorithm]
        self.records = records
        self.offsets = offsets
        self.table_bits = table_bits
        self.skip = table_bits // 8
        self.id_bytes = id_bytes
        self.id_base = id_base
        self.file = file

    @classmethod
    def build(
        cls, algorithm: str, ids: NDArray[np.int64], digests: NDArray[np.uint8]
    ) -> DigestSegment:
        """Index ``digests`` (``(n, width)`` uint8) under unique ``ids``."""
        width = DIGEST_WIDTHS[algorithm]
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        digests = check_digests(digests, width)
        n = ids.shape[0]
        if digests.shape[0] != n:
            raise InternalError("ids and digests differ in length")
        if n > 1 and np.unique(ids).shape[0] != n:
            raise InternalError("ids in a segment must be unique")
        # Sort by digest: big-endian 8-byte columns compare like the bytes themselves.
        padded = np.zeros((n, -(-width // 8) * 8), dtype=np.uint8)
        padded[:, :width] = digests
        cols = padded.view(">u8")
        order = _digest_order(cols, ids)
        digests, ids = digests[order], ids[order]
        bits = table_bits_for(n)
        offsets = np.zeros((1 << bits) + 1, dtype=np.int64)
        _fill_offsets(_prefixes(digests, bits), offsets)
        id_base = int(ids.min()) if n else 0
        id_bytes = id_bytes_for(int(ids.max()) - id_base if n else 0)
        skip = bits // 8
        records = np.empty((n, width - skip + id_bytes), dtype=np.uint8)
        records[:, : width - skip] = digests[:, skip:]
        offsets_le = (ids - id_base).astype("<u8").view(np.uint8).reshape(n, 8)
        records[:, width - skip :] = offsets_le[:, :id_bytes]
        offsets_small = offsets.astype(np.uint32 if n < 2**32 else np.int64)
        return cls(
            algorithm, records, offsets_small, table_bits=bits, id_bytes=id_bytes, id_base=id_base
        )

    @classmethod
    def open(cls, path: Path, algorithm: str, *, verify: bool = False) -> DigestSegment:
        """Map a segment file; raise :class:`IndexCorruptError` if it is damaged."""
        f = SegmentFile.open(path, kind=algorithm, verify=verify)
        try:
            meta = f.meta
            segment = cls(
                algorithm,
                f.arrays["records"],
                f.arrays["offsets"],
                table_bits=int(meta["table_bits"]),
                id_bytes=int(meta["id_bytes"]),
                id_base=int(meta["id_base"]),
                file=f,
            )
            if (
                segment.offsets.shape[0] != (1 << segment.table_bits) + 1
                or segment.records.shape[1] != segment.width - segment.skip + segment.id_bytes
            ):
                raise corrupt(path, "array sizes disagree with the header")
            if int(segment.offsets[-1]) != segment.records.shape[0]:
                raise corrupt(path, "bucket table does not cover the records")
        except (KeyError, ValueError) as exc:
            raise corrupt(path, str(exc)) from exc
        return segment

    def write(self, path: Path) -> int:
        """Write this segment to ``path`` atomically; returns the file size."""
        meta = {
            "entries": len(self),
            "table_bits": self.table_bits,
            "id_bytes": self.id_bytes,
            "id_base": self.id_base,
        }
        return write_segment(
            path, self.algorithm, meta, {"records": self.records, "offsets": self.offsets}
        )

    def __len__(self) -> int:
        return int(self.records.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.records.nbytes + self.offsets.nbytes)

    @property
    def ids(self) -> NDArray[np.int64]:
        """Every entry id, in digest order (decoded; reads every record)."""
        n, suffix = len(self), self.width - self.skip
        raw = np.zeros((n, 8), dtype=np.uint8)
        raw[:, : self.id_bytes] = self.records[:, suffix:]
        return raw.view("<u8").reshape(-1).astype(np.int64) + self.id_base

    @property
    def digests(self) -> NDArray[np.uint8]:
        """Every digest, in sorted order (rebuilt from the bucket table and records)."""
        n = len(self)
        bucket = np.repeat(
            np.arange(1 << self.table_bits, dtype=np.uint64),
            np.diff(self.offsets.astype(np.int64)).astype(np.int64),
        )
        head = (bucket << np.uint64(64 - self.table_bits)).astype(">u8").view(np.uint8)
        out = np.empty((n, self.width), dtype=np.uint8)
        out[:, : self.skip] = head.reshape(n, 8)[:, : self.skip]
        out[:, self.skip :] = self.records[:, : self.width - self.skip]
        return out

    def lookup(self, digests: NDArray[np.uint8]) -> DigestHits:
        """Every ``(query position, id)`` whose digest equals a query's."""
        q = check_digests(digests, self.width)
        if len(self) == 0 or q.shape[0] == 0:
            return DigestHits.empty()
        prefixes = _prefixes(q, self.table_bits)
        offsets = self.offsets
        cap = _INITIAL_CAP
        sel = np.arange(q.shape[0], dtype=np.int64)
        parts_q, parts_i = [], []
        while sel.size:
            out = np.empty((sel.size, cap), dtype=np.int64)
            counts = np.empty(sel.size, dtype=np.int64)
            qs = q if sel.size == q.shape[0] else np.ascontiguousarray(q[sel])
            ps = prefixes if sel.size == q.shape[0] else prefixes[sel]
            _lookup(
                self.records, offsets, self.table_bits, self.skip, self.id_bytes,
                self.id_base, ps, qs, out, counts,
            )  # fmt: skip
            fits = counts <= cap
            usable = np.where(fits, counts, 0)
            parts_q.append(np.repeat(sel, usable))
            parts_i.append(out[np.arange(cap)[None, :] < usable[:, None]])
            sel, cap = sel[~fits], int(counts.max())
        return DigestHits(np.concatenate(parts_q), np.concatenate(parts_i)).sorted()
