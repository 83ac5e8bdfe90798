"""An immutable exact PDQ index over a fixed set of entries: in memory or mapped from a file.

See :mod:`amparo.index.mih` for the search and its exactness argument. Rows are stored in id
order (so membership tests are binary searches); per chunk, a permutation of the rows
sorted by chunk value and a table of bucket starts, both bit-packed at the width of the
row count (:mod:`amparo.index._packed`). Ids are stored as uint32 when they all fit.

Per entry, a segment of ``n`` entries and ``m`` chunks holds the 32-byte hash, 4 (or 8)
bytes of id, ``m * bits / 8`` bytes of permutations (``bits`` = bit length of ``n``) and
its share of the tables, ``bits / 8 * sum(2**width) / n`` bytes: at 100M entries, 11 chunks
and 27 bits, 32 + 4 + 37.1 + 4.0 = 77 bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from amparo.errors import IndexCorruptError, InternalError
from amparo.index import mih
from amparo.index._packed import bits_for, region_words
from amparo.index.base import IndexHits, check_queries
from amparo.index.segment_file import REBUILD_HINT, SegmentFile, corrupt, write_segment
from amparo.signals.pdq import PDQ_BYTES

SEGMENT_KIND = "pdq"
# The layout of a "pdq" segment's arrays, recorded in its metadata. 1 (no "layout" key):
# int64 ids, uint32 permutations and tables; 2: packed permutations and tables, uint32 ids
# where they fit. Older layouts are refused with the rebuild hint (the service rebuilds).
LAYOUT = 2
_U32_IDS = 1 << 32
# Lookup+verify work (in units of a bucket lookup), as a share of the entries, above which
# one linear popcount pass is cheaper. With prefetching, lookups in giant buckets cost about
# 13 ns a unit against 5-8 ns a row scanned (10M clustered entries: queries near
# low-entropy hashes took 29 ms by lookups, 80 ms by a scan; a batch of them ran alike
# at ratios 0.25 to 4, 1.7x slower at the former 0.125).
DEFAULT_SCAN_RATIO = 0.5
# The chunk count is chosen for a typical query at the default PDQ threshold.
_PLANNING_RADIUS = 31
_MAX_TABLE_BITS = 24
# 11 chunks keep every chunk within 24 bits (64 MiB tables); 32 chunks are 8 bits wide.
MIN_CHUNKS = -(-256 // _MAX_TABLE_BITS)
MAX_CHUNKS = 32
_SAMPLE = 200_000
# Lookup tables may cost up to this much per entry: at 10M entries this admits 11 chunks of
# 23-24 bits (1.3 GB in all), which halves query time against 12 chunks of 21-22 bits.
_TABLE_BYTES_PER_ENTRY = 48.0
_GIANT_BUCKET = 0.001
# Matches per query the first pass has room for (queries with more run again), within
# about 40 MB of result buffers for a whole batch.
_MAX_CAP = 256
_BUFFER_SLOTS = 1 << 22
# The batched kernel takes batches of at least this many queries on segments of at least
# this many entries (see ``PdqSegment.use_batch_kernel``).
BATCH_MIN_QUERIES = 8192
BATCH_MIN_ENTRIES = 8_000_000


def packed_layout(
    n: int, widths: NDArray[np.int64]
) -> tuple[int, NDArray[np.int64], NDArray[np.int64], tuple[int, int]]:
    """Bits a value, start bit of each chunk's permutation and table, and the word counts of
    the two packed arrays (each with its spare word) for ``n`` entries."""
    bits = bits_for(n)
    perm_words = region_words(n, bits)
    perm_base = np.arange(widths.shape[0], dtype=np.int64) * (perm_words * 64)
    table_words = np.array(
        [region_words((1 << int(w)) + 1, bits) for w in widths.tolist()], dtype=np.int64
    )
    table_base = np.concatenate([[0], np.cumsum(table_words)[:-1]]).astype(np.int64) * 64
    return (
        bits,
        perm_base,
        table_base,
        (widths.shape[0] * perm_words + 1, int(table_words.sum()) + 1),
    )


def choose_chunks(words: NDArray[np.uint64]) -> int:
    """Pick the chunk count minimising expected lookups + verifications on this data.

    Each lookup costs a table read plus a hash read per entry in its bucket: the chance
    crowd (``n / 2^width``) at every lookup, plus the query's near-duplicate family, whose
    size per chunk is measured on a sample (collision rate of chunk values). Lookup tables are
    held to at most 48 bytes an entry (or 1 MiB) so memory stays bounded.
    """
    n = words.shape[0]
    sample = words[:: max(1, n // _SAMPLE)]
    s = sample.shape[0]
    best_m, best_cost = 32, float("inf")
    for m in range(MIN_CHUNKS, MAX_CHUNKS + 1):
        starts, widths = mih.chunk_layout(m)
        table_bytes = bits_for(n) / 8 * float(np.sum(np.exp2(widths)))
        if table_bytes > max(_TABLE_BYTES_PER_ENTRY * n, float(1 << 20)):
            continue
        cost = 0.0
        for k, rad in enumerate(mih.chunk_radii(m, _PLANNING_RADIUS)):
            if rad < 0:
                continue
            counts = np.unique(mih.chunk_values(sample, starts[k], widths[k]), return_counts=True)[
                1
            ].astype(np.float64)
            # A few giant buckets (all-zero chunks of low-entropy hashes) would dominate the
            # mean, yet only queries near them visit them; leave them out of the estimate.
            counts = counts[counts <= max(2.0, _GIANT_BUCKET * s)]
            collide = float(np.sum(counts * (counts - 1))) / max(1, s * (s - 1))
            # Each lookup meets the chance crowd of its bucket (n / 2^width); only the
            # lookups at the query's own neighbourhood meet its near-duplicate family,
            # which the collision rate measures, about once per chunk.
            lookups = len(mih.neighbour_masks(int(widths[k]), int(rad)))
            chance = n * 2.0 ** -float(widths[k])
            cost += lookups * (1.0 + 2.0 * chance) + 2.0 * n * collide
        if cost < best_cost:
            best_m, best_cost = m, cost
    return best_m


class PdqSegment:
    """Exact radius search over a fixed set of ``(id, hash)`` entries. Immutable.

    ``ids`` is sorted, uint32 when every id fits, else int64 (:meth:`ids_at` reads them as
    int64).
    """

    def __init__(
        self,
        ids: NDArray[np.int64] | NDArray[np.uint32],
        hashes: NDArray[np.uint8],
        chunks: int,
        perms: NDArray[np.uint64],
        offsets: NDArray[np.uint64],
        *,
        file: SegmentFile | None = None,
    ) -> None:
        self.ids = ids
        self.hashes = hashes
        self.file = file
        self._words = mih.as_words(hashes)
        self._perms = perms
        self._offsets = offsets
        self.chunks = chunks
        self._starts, self._widths = mih.chunk_layout(chunks)
        self._bits, self._perm_base, self._table_base, sizes = packed_layout(len(ids), self._widths)
        if perms.shape != (sizes[0],) or offsets.shape != (sizes[1],):
            raise InternalError("packed arrays disagree with the chunk layout")
        self._plans: dict[int, tuple[NDArray[Any], ...]] = {}

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def build(
        cls, ids: NDArray[np.int64], hashes: NDArray[np.uint8], *, chunks: int | None = None
    ) -> PdqSegment:
        """Index ``hashes`` (``(n, 32)`` uint8) under unique ``ids``.

        ``chunks`` (11..32: no chunk wider than 24 bits) overrides the count chosen from the
        data.
        """
        # The checks below guard the callers (the live index, tests), not user input.
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        hashes = np.asarray(hashes, dtype=np.uint8).reshape(-1, PDQ_BYTES)
        if ids.shape[0] != hashes.shape[0]:
            raise InternalError("ids and hashes differ in length")
        if ids.shape[0] >= 2**32:
            raise InternalError("a segment holds fewer than 2**32 entries")
        if ids.shape[0] > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            # Not already in id order (a bulk load from the database is): sort a copy.
            order = np.argsort(ids, kind="stable")
            ids = np.ascontiguousarray(ids[order])
            if bool(np.any(ids[1:] == ids[:-1])):
                raise InternalError("ids in a segment must be unique")
            hashes = hashes[order]
        hashes = np.ascontiguousarray(hashes)
        words = mih.as_words(hashes)
        m = chunks if chunks is not None else choose_chunks(words)
        if not MIN_CHUNKS <= m <= MAX_CHUNKS:
            raise InternalError(f"chunks must be between {MIN_CHUNKS} and {MAX_CHUNKS}, got {m}")
        starts, widths = mih.chunk_layout(m)
        bits, perm_base, table_base, sizes = packed_layout(ids.shape[0], widths)
        perms = np.zeros(sizes[0], dtype=np.uint64)
        offsets = np.zeros(sizes[1], dtype=np.uint64)
        mih.build_tables(words, starts, widths, table_base, perm_base, bits, perms, offsets)
        stored = ids
        if ids.shape[0] and int(ids[0]) >= 0 and int(ids[-1]) < _U32_IDS:
            stored = ids.astype(np.uint32)
        return cls(stored, hashes, m, perms, offsets)

    @classmethod
    def open(cls, path: Path, *, verify: bool = False) -> PdqSegment:
        """Map a segment file; see :mod:`amparo.index.segment_file` for the checks made."""
        f = SegmentFile.open(path, kind=SEGMENT_KIND, verify=verify)
        layout = f.meta.get("layout", 1)
        if layout != LAYOUT:
            raise IndexCorruptError(
                f"index segment {path} has PDQ layout {layout}, written by another Amparo "
                f"version; this one reads layout {LAYOUT}",
                hint=REBUILD_HINT,
            )
        a = f.arrays
        try:
            ids, hashes = a["ids"], a["hashes"]
            if ids.dtype not in (np.dtype("<u4"), np.dtype("<i8")) or ids.ndim != 1:
                raise corrupt(path, f"ids stored as {ids.dtype}")
            if hashes.shape != (ids.shape[0], PDQ_BYTES) or int(f.meta["bits"]) != bits_for(
                ids.shape[0]
            ):
                raise corrupt(path, "array sizes disagree with the entry count")
            segment = cls(ids, hashes, int(f.meta["chunks"]), a["perms"], a["offsets"], file=f)
        except (KeyError, ValueError, TypeError, InternalError) as exc:
            raise corrupt(path, str(exc)) from exc
        return segment

    def write(self, path: Path) -> int:
        """Write this segment to ``path`` atomically; returns the file size."""
        meta = {
            "layout": LAYOUT,
            "entries": len(self),
            "chunks": self.chunks,
            "bits": self._bits,
            "chunk_starts": self._starts.tolist(),
            "chunk_widths": self._widths.tolist(),
            "bit_order": "bit p = bit (p % 64) of little-endian uint64 word (p // 64)",
            "packing": "perms: chunk k's rows from bit k*perm_words*64; offsets: chunk k's "
            "2**width+1 bucket starts from the next word after chunk k-1's; bits a value",
        }
        arrays: dict[str, NDArray[Any]] = {
            "ids": self.ids,
            "hashes": self.hashes,
            "perms": self._perms,
            "offsets": self._offsets,
        }
        return write_segment(path, SEGMENT_KIND, meta, arrays)

    # -- queries --------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes held by the segment's arrays (mapped or in memory)."""
        arrays: tuple[NDArray[Any], ...] = (self.ids, self.hashes, self._perms, self._offsets)
        return int(sum(a.nbytes for a in arrays))

    def ids_at(self, rows: NDArray[np.int64]) -> NDArray[np.int64]:
        """The ids of ``rows``, as int64."""
        return np.asarray(self.ids[rows], dtype=np.int64)

    def contains(self, ids: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether each id is in this segment."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(self) == 0:
            return np.zeros(ids.shape, dtype=bool)
        if self.ids.dtype == np.uint32:
            # Search in the stored width (a mixed-width search would copy every id).
            fits = (ids >= 0) & (ids < _U32_IDS)
            narrow = np.where(fits, ids, 0).astype(np.uint32)
            pos = np.minimum(np.searchsorted(self.ids, narrow), len(self) - 1)
            return np.asarray(fits & (self.ids[pos] == narrow))
        pos = np.minimum(np.searchsorted(self.ids, ids), len(self) - 1)
        return np.asarray(self.ids[pos] == ids)

    def search(
        self, queries: NDArray[np.uint8], radius: int, *, scan_ratio: float = DEFAULT_SCAN_RATIO
    ) -> IndexHits:
        """Every entry within ``radius`` bits of each query, as sorted :class:`IndexHits`."""
        q = check_queries(queries, radius)
        qpos, rows, dist = self.search_rows(mih.as_words(q), radius, scan_ratio=scan_ratio)
        return IndexHits(qpos, self.ids_at(rows), dist).sorted()

    def _plan(self, radius: int) -> tuple[NDArray[Any], ...]:
        plan = self._plans.get(radius)
        if plan is None:
            radii = mih.chunk_radii(self.chunks, radius)
            masks = [
                mih.neighbour_masks(int(w), int(r))
                for w, r in zip(self._widths, radii, strict=True)
                if r >= 0
            ]
            counts = np.zeros(self.chunks, dtype=np.int64)
            counts[radii >= 0] = [len(x) for x in masks]
            mask_starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
            flat = np.concatenate(masks) if masks else np.zeros(0, dtype=np.uint64)
            plan = (radii, flat, mask_starts, counts)
            self._plans[radius] = plan
        return plan

    def search_rows(
        self, queries: NDArray[np.uint64], radius: int, *, scan_ratio: float = DEFAULT_SCAN_RATIO
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int16]]:
        """Hits as (query position, row, distance) for ``(n, 4)`` uint64 query words.

        ``scan_ratio`` sets when a query is answered by a linear scan instead of lookups
        (when its lookup work exceeds ``scan_ratio * len(self)``); both give the same answer.
        Large batches against large segments take the batched kernel
        (:func:`amparo.index.mih.search_batch`), which makes the same lookups in table order.
        """
        nq = queries.shape[0]
        if len(self) == 0 or nq == 0:
            return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int16))
        limit = int(min(scan_ratio * len(self), 2.0**62))
        if self.use_batch_kernel(nq):
            qpos, rows, dist, to_scan = self._lookup_batched(queries, radius, limit)
        else:
            qpos, rows, dist, to_scan = self._lookup_each(queries, radius, limit)
        parts: list[tuple[NDArray[Any], ...]] = [(qpos, rows, dist)]
        if to_scan.size:
            # Queries whose lookups would cost more than one pass over the rows.
            cap = max(16, min(_MAX_CAP, _BUFFER_SLOTS // to_scan.size))
            rows2, dist2, counts = self._scan(queries[to_scan], radius, cap)
            parts.append(_collect(to_scan, rows2, dist2, counts))
            over = to_scan[counts > cap]
            if over.size:
                rows2, dist2, counts = self._scan(queries[over], radius, int(counts.max()))
                parts.append(_collect(over, rows2, dist2, counts))
        if len(parts) == 1:
            return qpos, rows, dist
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )

    def use_batch_kernel(self, nq: int) -> bool:
        """Whether a batch of ``nq`` queries takes the batched kernel.

        Its sorting pays only when the tables far exceed the CPU caches and a batch is
        large: measured (20,000 random queries, radius 31) 1.25x faster than the per-query
        kernel at 10M entries, slower at 3M and below, and even at 10M from ~8,000 queries.
        """
        return len(self) >= BATCH_MIN_ENTRIES and nq >= BATCH_MIN_QUERIES

    def _scan(self, queries: NDArray[np.uint64], radius: int, cap: int) -> tuple[NDArray[Any], ...]:
        qs = np.ascontiguousarray(queries)
        rows = np.empty((qs.shape[0], cap), dtype=np.int64)
        dist = np.empty((qs.shape[0], cap), dtype=np.int16)
        counts = np.empty(qs.shape[0], dtype=np.int64)
        mih.scan(self._words, qs, radius, rows, dist, counts)
        return rows, dist, counts

    def _lookup_each(
        self, queries: NDArray[np.uint64], radius: int, limit: int
    ) -> tuple[NDArray[Any], ...]:
        """Per-query kernel; returns hits and the queries left for a linear scan."""
        radii, masks, mask_starts, mask_counts = self._plan(radius)

        def lookup(sel: NDArray[np.int64], cap: int) -> tuple[NDArray[Any], ...]:
            qs = np.ascontiguousarray(queries[sel])
            rows = np.empty((qs.shape[0], cap), dtype=np.int64)
            dist = np.empty((qs.shape[0], cap), dtype=np.int16)
            counts = np.empty(qs.shape[0], dtype=np.int64)
            kernel = mih.search_serial if qs.shape[0] < 4 else mih.search_parallel
            kernel(
                self._words, self._perms, self._offsets, self._table_base, self._perm_base,
                self._bits, self._starts, self._widths, radii, masks, mask_starts, mask_counts,
                qs, radius, limit, rows, dist, counts,
            )  # fmt: skip
            return rows, dist, counts

        nq = queries.shape[0]
        everything = np.arange(nq, dtype=np.int64)
        first_cap = max(16, min(_MAX_CAP, _BUFFER_SLOTS // nq))
        rows, dist, counts = lookup(everything, first_cap)
        if nq == 1 and 0 <= counts[0] <= first_cap:  # a service's lookup: no bookkeeping
            found = int(counts[0])
            return np.zeros(found, np.int64), rows[0, :found], dist[0, :found], everything[:0]
        parts = [_collect(everything, rows, dist, counts)]
        to_scan = everything[counts < 0]
        # Queries with more matches than the first buffer held run again with room for all.
        over = everything[counts > first_cap]
        if over.size:
            rows, dist, counts = lookup(over, int(counts.max()))
            parts.append(_collect(over, rows, dist, counts))
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
            to_scan,
        )

    def _lookup_batched(
        self, queries: NDArray[np.uint64], radius: int, limit: int
    ) -> tuple[NDArray[Any], ...]:
        """Batched kernel: units of (chunk, group of queries) spread over the cores."""
        radii, masks, mask_starts, mask_counts = self._plan(radius)
        nq = queries.shape[0]
        queries = np.ascontiguousarray(queries)
        qvals = mih.query_chunks(queries, self._starts, self._widths)
        groups = -(-nq // mih.BATCH_GROUP)
        size = -(-nq // groups)
        searched = np.flatnonzero(radii >= 0)
        units = [
            (int(k), g * size, min(nq, (g + 1) * size)) for g in range(groups) for k in searched
        ]
        # Largest units first: the cores take the next unit as they finish one.
        units.sort(key=lambda u: -(u[2] - u[1]) * int(mask_counts[u[0]]))
        chunk_limit = max(1, limit // (2 * max(1, searched.size)))
        to_scan = np.zeros(nq, dtype=np.uint8)
        room = np.array([4 * (q1 - q0) + 1024 for _, q0, q1 in units], dtype=np.int64)
        parts: list[tuple[NDArray[Any], ...]] = []
        todo = list(range(len(units)))
        while todo:
            chosen = [units[u] for u in todo]
            bounds = np.concatenate([[0], np.cumsum(room[todo])]).astype(np.int64)
            out_q = np.empty(int(bounds[-1]), dtype=np.int64)
            out_rows = np.empty(int(bounds[-1]), dtype=np.int64)
            out_dist = np.empty(int(bounds[-1]), dtype=np.int16)
            counts = np.zeros(len(todo), dtype=np.int64)
            with numba.parallel_chunksize(1):
                mih.search_batch(
                    self._words, self._perms, self._offsets, self._table_base, self._perm_base,
                    self._bits, self._starts, self._widths, radii, masks, mask_starts,
                    mask_counts, queries, qvals, radius, chunk_limit,
                    np.array([u[0] for u in chosen], dtype=np.int64),
                    np.array([u[1] for u in chosen], dtype=np.int64),
                    np.array([u[2] for u in chosen], dtype=np.int64),
                    bounds, out_q, out_rows, out_dist, counts, to_scan,
                )  # fmt: skip
            again = []
            for i, u in enumerate(todo):
                if counts[i] > room[u]:
                    # More hits than room: run this unit again with room for all of them.
                    room[u] = counts[i]
                    again.append(u)
                else:
                    a = int(bounds[i])
                    b = a + int(counts[i])
                    parts.append((out_q[a:b], out_rows[a:b], out_dist[a:b]))
            todo = again
        qpos = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        rows = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
        dist = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.int16)
        # Queries sent to the linear scan: their partial hits from any unit are dropped.
        scanned = to_scan.astype(bool)
        keep = ~scanned[qpos]
        return qpos[keep], rows[keep], dist[keep], np.flatnonzero(scanned).astype(np.int64)


def _collect(
    sel: NDArray[np.int64], rows: NDArray[Any], dist: NDArray[Any], counts: NDArray[Any]
) -> tuple[NDArray[Any], ...]:
    """Flatten the hits of queries whose matches all fitted in the buffers."""
    cap = rows.shape[1]
    usable = np.where((counts >= 0) & (counts <= cap), counts, 0)
    mask = np.arange(cap)[None, :] < usable[:, None]
    return np.repeat(sel, usable), rows[mask], dist[mask]
