"""Multi-index hashing kernels for exact Hamming-radius search over 256-bit hashes.

A hash is four uint64 words (the 32 packed bytes read little-endian); bit ``p`` of the hash
is bit ``p % 64`` of word ``p // 64``. The 256 bits are split into ``m`` contiguous chunks.
For each chunk the segment stores the rows sorted by chunk value (``perm``) and a table of
bucket starts indexed by chunk value (``offsets``), so looking up one chunk value is two
array reads. Both are bit-packed (:mod:`amparo.index._packed`) at the width of the row count.

Exactness (pigeonhole, refined as in Norouzi et al., "Fast Exact Search in Hamming Space
with Multi-Index Hashing"): with ``r = m * s + a`` (``0 <= a < m``), an entry within ``r``
bits of the query differs in at most ``s`` bits in one of chunks ``0..a``, or at most
``s - 1`` bits in one of the others; otherwise the chunk distances would sum to at least
``(a + 1)(s + 1) + (m - a - 1) s = r + 1``. Searching chunk ``k`` for every value within its
radius therefore finds every match at least once; each candidate's full distance is then
checked with popcount, and a match is reported only from the first chunk that can find it.

This module is over 450 lines because it is one algorithm kept whole on purpose: the table
layout (``chunk_layout``, ``build_tables``), the per-query search, the batched search and the
candidate check all depend on the same chunk widths, radii and "first chunk that can find it"
rule, and the argument above is what makes each of them correct. Split across modules, a
change to one part could break the invariant another relies on without either file showing
it. It is covered as a whole by the property tests against brute force
(tests/unit/test_index_exact.py).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from amparo.index._jit import inline, jit, pjit, popcount64, prange, prefetch
from amparo.index._packed import store, unpack

HASH_BITS = 256
WORDS = 4
# Queries per group in the linear scan: each pass over the data serves a group at once.
_SCAN_GROUP = 8
# Queries per parallel task: each task allocates its scratch buffers once.
_QUERY_BLOCK = 32
# Loops over random reads ask for the data this many iterations ahead (software prefetch),
# so more cache misses are in flight than the CPU's out-of-order window alone would allow.
_PREFETCH_AHEAD = 32


def chunk_layout(m: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Start bit and width of each of ``m`` chunks; the narrower chunks come first."""
    base, extra = divmod(HASH_BITS, m)
    widths = np.array([base] * (m - extra) + [base + 1] * extra, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
    return starts, widths


def chunk_radii(m: int, radius: int) -> NDArray[np.int64]:
    """Per-chunk search radius from the refined pigeonhole bound (-1: chunk not searched)."""
    s, a = divmod(radius, m)
    return np.array([s if k <= a else s - 1 for k in range(m)], dtype=np.int64)


@lru_cache(maxsize=64)
def neighbour_masks(width: int, radius: int) -> NDArray[np.uint64]:
    """Every ``width``-bit mask with at most ``radius`` bits set, fewest bits first."""
    masks = [0]
    for bits in range(1, radius + 1):
        for combo in itertools.combinations(range(width), bits):
            masks.append(sum(1 << b for b in combo))
    out = np.array(masks, dtype=np.uint64)
    out.flags.writeable = False
    return out


def as_words(hashes: NDArray[np.uint8]) -> NDArray[np.uint64]:
    """View packed ``(n, 32)`` hashes as ``(n, 4)`` uint64 words (no copy when contiguous)."""
    return np.ascontiguousarray(hashes, dtype=np.uint8).view("<u8").reshape(-1, WORDS)


@inline
def _chunk(words: NDArray[np.uint64], row: int, start: int, width: int) -> np.uint64:
    word = start >> 6
    shift = start & 63
    value = words[row, word] >> np.uint64(shift)
    if shift + width > 64:
        value |= words[row, word + 1] << np.uint64(64 - shift)
    return np.uint64(value & ((np.uint64(1) << np.uint64(width)) - np.uint64(1)))


@inline
def _distance(a: NDArray[np.uint64], i: int, b: NDArray[np.uint64], j: int) -> int:
    return int(
        popcount64(a[i, 0] ^ b[j, 0])
        + popcount64(a[i, 1] ^ b[j, 1])
        + popcount64(a[i, 2] ^ b[j, 2])
        + popcount64(a[i, 3] ^ b[j, 3])
    )


@jit
def chunk_values(words: NDArray[np.uint64], start: int, width: int) -> NDArray[np.uint32]:
    """The value of one chunk for every row."""
    out = np.empty(words.shape[0], dtype=np.uint32)
    for row in range(words.shape[0]):
        out[row] = np.uint32(_chunk(words, row, start, width))
    return out


@pjit
def build_tables(
    words: NDArray[np.uint64],
    starts: NDArray[np.int64],
    widths: NDArray[np.int64],
    table_base: NDArray[np.int64],
    perm_base: NDArray[np.int64],
    bits: int,
    perms: NDArray[np.uint64],
    offsets: NDArray[np.uint64],
) -> None:
    """Counting-sort the rows by each chunk's value, filling the zeroed packed arrays
    ``perms`` (chunk ``k``'s from bit ``perm_base[k]``) and ``offsets`` (from bit
    ``table_base[k]``), ``bits`` bits a value."""
    n = words.shape[0]
    for k in prange(starts.shape[0]):
        base = table_base[k]
        pbase = perm_base[k]
        size = np.int64(1) << widths[k]
        counts = np.zeros(size + 1, dtype=np.int64)
        values = np.empty(n, dtype=np.uint32)  # chunks are at most 24 bits wide
        for row in range(n):
            v = np.int64(_chunk(words, row, starts[k], widths[k]))
            values[row] = np.uint32(v)
            counts[v + 1] += 1
        for u in range(size):
            counts[u + 1] += counts[u]
        for u in range(size + 1):
            store(offsets, base + u * bits, bits, counts[u])
        for row in range(n):
            w = np.int64(values[row])
            store(perms, pbase + counts[w] * bits, bits, np.int64(row))
            counts[w] += 1


@inline
def _search_one(
    words: NDArray[np.uint64],
    perms: NDArray[np.uint64],
    offsets: NDArray[np.uint64],
    table_base: NDArray[np.int64],
    perm_base: NDArray[np.int64],
    bits: int,
    starts: NDArray[np.int64],
    widths: NDArray[np.int64],
    radii: NDArray[np.int64],
    masks: NDArray[np.uint64],
    mask_starts: NDArray[np.int64],
    mask_counts: NDArray[np.int64],
    queries: NDArray[np.uint64],
    qi: int,
    radius: int,
    scan_limit: int,
    out_rows: NDArray[np.int64],
    out_dist: NDArray[np.int16],
    lows: NDArray[np.int64],
    highs: NDArray[np.int64],
    chunk_of: NDArray[np.int64],
    cand_rows: NDArray[np.int64],
    cand_chunk: NDArray[np.int64],
) -> int:
    """Search one query; -1 when a linear scan is cheaper, -2 when the candidate buffers
    (``cand_rows``, ``cand_chunk``) are too small (their size is then ``-2 - result``).

    The scratch arrays are reused across queries: fresh allocations per query cost page
    faults that dominated the search time.
    """
    m = starts.shape[0]
    cap = out_rows.shape[1]
    qvals = np.empty(m, dtype=np.uint64)
    for k in range(m):
        qvals[k] = _chunk(queries, qi, starts[k], widths[k])
    # Three passes, each a loop of independent loads with few branches, so the CPU keeps
    # many cache misses in flight: bucket bounds, then candidate rows, then their hashes.
    n_lookups = 0
    for k in range(m):
        if radii[k] >= 0:
            n_lookups += mask_counts[k]
    i = 0
    for k in range(m):
        if radii[k] < 0:
            continue
        base = table_base[k]
        t0 = mask_starts[k]
        t1 = t0 + mask_counts[k]
        for t in range(t0, min(t1, t0 + _PREFETCH_AHEAD)):
            prefetch(offsets, (base + np.int64(qvals[k] ^ masks[t]) * bits) >> 6)
        for t in range(t0, t1):
            if t + _PREFETCH_AHEAD < t1:
                ahead = np.int64(qvals[k] ^ masks[t + _PREFETCH_AHEAD])
                prefetch(offsets, (base + ahead * bits) >> 6)
            x = base + np.int64(qvals[k] ^ masks[t]) * bits
            lows[i] = unpack(offsets, x, bits)
            highs[i] = unpack(offsets, x + bits, bits)
            chunk_of[i] = k
            i += 1
    n_cand = 0
    for i in range(n_lookups):
        n_cand += highs[i] - lows[i]
    # Near-duplicates or low-entropy hashes make buckets huge; past the budget one linear
    # scan is cheaper, so give up and let the caller scan (worst case stays bounded).
    if n_lookups + 2 * n_cand > scan_limit:
        return -1
    if n_cand > cand_rows.shape[0]:
        return -2 - n_cand
    c = 0
    for i in range(n_lookups):
        k = chunk_of[i]
        if i + _PREFETCH_AHEAD < n_lookups:
            ahead = perm_base[chunk_of[i + _PREFETCH_AHEAD]] + lows[i + _PREFETCH_AHEAD] * bits
            prefetch(perms, ahead >> 6)
        pbase = perm_base[k]
        for p in range(lows[i], highs[i]):
            cand_rows[c] = unpack(perms, pbase + p * bits, bits)
            cand_chunk[c] = k
            c += 1
    count = 0
    for c in range(min(n_cand, _PREFETCH_AHEAD)):
        prefetch(words, cand_rows[c])
    for c in range(n_cand):
        if c + _PREFETCH_AHEAD < n_cand:
            prefetch(words, cand_rows[c + _PREFETCH_AHEAD])
        row = cand_rows[c]
        d = _distance(words, row, queries, qi)
        if d > radius:
            continue
        seen = False  # found already through an earlier chunk?
        for j in range(cand_chunk[c]):
            if radii[j] >= 0:
                cj = _chunk(words, row, starts[j], widths[j])
                if np.int64(popcount64(cj ^ qvals[j])) <= radii[j]:
                    seen = True
                    break
        if seen:
            continue
        if count < cap:
            out_rows[qi, count] = row
            out_dist[qi, count] = d
        count += 1
    return count


@jit
def _search_block(
    words: NDArray[np.uint64],
    perms: NDArray[np.uint64],
    offsets: NDArray[np.uint64],
    table_base: NDArray[np.int64],
    perm_base: NDArray[np.int64],
    bits: int,
    starts: NDArray[np.int64],
    widths: NDArray[np.int64],
    radii: NDArray[np.int64],
    masks: NDArray[np.uint64],
    mask_starts: NDArray[np.int64],
    mask_counts: NDArray[np.int64],
    queries: NDArray[np.uint64],
    q0: int,
    q1: int,
    radius: int,
    scan_limit: int,
    out_rows: NDArray[np.int64],
    out_dist: NDArray[np.int16],
    counts: NDArray[np.int64],
) -> None:
    n_lookups = 0
    for k in range(starts.shape[0]):
        if radii[k] >= 0:
            n_lookups += mask_counts[k]
    lows = np.empty(n_lookups, dtype=np.int64)
    highs = np.empty(n_lookups, dtype=np.int64)
    chunk_of = np.empty(n_lookups, dtype=np.int64)
    cand_rows = np.empty(4 * n_lookups + 1024, dtype=np.int64)
    cand_chunk = np.empty(4 * n_lookups + 1024, dtype=np.int64)
    for qi in range(q0, q1):
        while True:
            c = _search_one(
                words, perms, offsets, table_base, perm_base, bits, starts, widths, radii, masks,
                mask_starts, mask_counts, queries, qi, radius, scan_limit, out_rows, out_dist,
                lows, highs, chunk_of, cand_rows, cand_chunk,
            )  # fmt: skip
            if c >= -1:
                break
            cand_rows = np.empty(-2 - c, dtype=np.int64)
            cand_chunk = np.empty(-2 - c, dtype=np.int64)
        counts[qi] = c


@pjit
def search_parallel(
    words: NDArray[np.uint64],
    perms: NDArray[np.uint64],
    offsets: NDArray[np.uint64],
    table_base: NDArray[np.int64],
    perm_base: NDArray[np.int64],
    bits: int,
    starts: NDArray[np.int64],
    widths: NDArray[np.int64],
    radii: NDArray[np.int64],
    masks: NDArray[np.uint64],
    mask_starts: NDArray[np.int64],
    mask_counts: NDArray[np.int64],
    queries: NDArray[np.uint64],
    radius: int,
    scan_limit: int,
    out_rows: NDArray[np.int64],
    out_dist: NDArray[np.int16],
    counts: NDArray[np.int64],
) -> None:
    """Search every query; ``counts[q]`` is the match count, or -1 when a scan is cheaper.

    Matches beyond ``out_rows.shape[1]`` are counted but not written.
    """
    nq = queries.shape[0]
    blocks = (nq + _QUERY_BLOCK - 1) // _QUERY_BLOCK
    for b in prange(blocks):
        _search_block(
            words, perms, offsets, table_base, perm_base, bits, starts, widths, radii, masks,
            mask_starts, mask_counts, queries, b * _QUERY_BLOCK,
            min(nq, (b + 1) * _QUERY_BLOCK), radius, scan_limit, out_rows, out_dist, counts,
        )  # fmt: skip


@jit
def search_serial(
    words: NDArray[np.uint64],
    perms: NDArray[np.uint64],
    offsets: NDArray[np.uint64],
    table_base: NDArray[np.int64],
    perm_base: NDArray[np.int64],
    bits: int,
    starts: NDArray[np.int64],
    widths: NDArray[np.int64],
    radii: NDArray[np.int64],
    masks: NDArray[np.uint64],
    mask_starts: NDArray[np.int64],
    mask_counts: NDArray[np.int64],
    queries: NDArray[np.uint64],
    radius: int,
    scan_limit: int,
    out_rows: NDArray[np.int64],
    out_dist: NDArray[np.int16],
    counts: NDArray[np.int64],
) -> None:
    """As :func:`search_parallel`, without the thread start-up cost for a few queries."""
    _search_block(
        words, perms, offsets, table_base, perm_base, bits, starts, widths, radii, masks,
        mask_starts, mask_counts, queries, 0, queries.shape[0], radius, scan_limit, out_rows,
        out_dist, counts,
    )  # fmt: skip


@pjit
def scan(
    words: NDArray[np.uint64],
    queries: NDArray[np.uint64],
    radius: int,
    out_rows: NDArray[np.int64],
    out_dist: NDArray[np.int16],
    counts: NDArray[np.int64],
) -> None:
    """Linear popcount scan, ``_SCAN_GROUP`` queries per pass over the rows."""
    nq = queries.shape[0]
    cap = out_rows.shape[1]
    groups = (nq + _SCAN_GROUP - 1) // _SCAN_GROUP
    for g in prange(groups):
        q0 = g * _SCAN_GROUP
        q1 = min(nq, q0 + _SCAN_GROUP)
        for qi in range(q0, q1):
            counts[qi] = 0
        for row in range(words.shape[0]):
            for qi in range(q0, q1):
                d = _distance(words, row, queries, qi)
                if d <= radius:
                    c = counts[qi]
                    if c < cap:
                        out_rows[qi, c] = row
                        out_dist[qi, c] = d
                    counts[qi] = c + 1


# -- batched search: many queries, one chunk at a time, lookups in table order --------------
#
# A query's lookups land at random places in tables of tens of megabytes, so the per-query
# kernel above waits on a cache and TLB miss for nearly every read. With thousands of
# queries at hand, the lookups of a whole group into one chunk's table are first bucketed by
# table position (a counting sort on the position's top bits), then made in that order: reads
# that fall on the same pages and cache lines follow each other, and the bucket reads in
# ``perms`` follow along. Exactness is unchanged: the same lookups and checks, reordered.

# Queries per unit of work (the query's offset in its group takes 14 bits of a sort key).
BATCH_GROUP = 1 << 15
_QUERY_BITS = 18
_QUERY_MASK = np.uint32((1 << _QUERY_BITS) - 1)
# Table positions are bucketed on their top bits: 4,096 buckets of a chunk's table.
_BIN_BITS = 14
# Candidates gathered before they are checked.
_BATCH_BUFFER = 1 << 15


@jit
def _batch_unit(
    words: NDArray[np.uint64],
    perms: NDArray[np.uint64],
    offsets: NDArray[np.uint64],
    table_base: NDArray[np.int64],
    perm_base: NDArray[np.int64],
    bits: int,
    starts: NDArray[np.int64],
    widths: NDArray[np.int64],
    radii: NDArray[np.int64],
    masks: NDArray[np.uint64],
    mask_starts: NDArray[np.int64],
    mask_counts: NDArray[np.int64],
    queries: NDArray[np.uint64],
    qvals: NDArray[np.uint64],
    k: int,
    q0: int,
    q1: int,
    radius: int,
    chunk_limit: int,
    to_scan: NDArray[np.uint8],
    out_q: NDArray[np.int64],
    out_rows: NDArray[np.int64],
    out_dist: NDArray[np.int16],
) -> int:
    """Search chunk ``k`` for queries ``q0..q1``; hits go to ``out_*`` (all of them when the
    return value, the hit count, is at most their length).

    A query with more than ``chunk_limit`` candidates in this chunk is marked in ``to_scan``
    (one linear scan is cheaper) and not searched further here or in later units.
    """
    width = widths[k]
    bin_bits = min(_BIN_BITS, width)
    low_bits = np.uint64(width - bin_bits)
    low_mask = (np.uint64(1) << low_bits) - np.uint64(1)
    n_bins = 1 << bin_bits
    m0 = mask_starts[k]
    m1 = m0 + mask_counts[k]
    g = q1 - q0
    # Counting sort of (table position, query) pairs by the position's top bits.
    cursor = np.zeros(n_bins + 1, dtype=np.int64)
    for q in range(q0, q1):
        v = qvals[q, k]
        for t in range(m0, m1):
            cursor[np.int64((v ^ masks[t]) >> low_bits) + 1] += 1
    for b in range(n_bins):
        cursor[b + 1] += cursor[b]
    keys = np.empty(cursor[n_bins], dtype=np.uint32)
    for q in range(q0, q1):
        v = qvals[q, k]
        tag = np.uint32(q - q0)
        for t in range(m0, m1):
            x = v ^ masks[t]
            slot = np.int64(x >> low_bits)
            keys[cursor[slot]] = (np.uint32(x & low_mask) << np.uint32(_QUERY_BITS)) | tag
            cursor[slot] += 1
    # cursor[b] now ends bucket b (and starts bucket b + 1). Candidates are gathered into a
    # buffer and checked in a separate loop of independent loads, as in the per-query kernel.
    seen_here = np.zeros(g, dtype=np.int64)
    buf_rows = np.empty(_BATCH_BUFFER, dtype=np.int64)
    buf_q = np.empty(_BATCH_BUFFER, dtype=np.int64)
    nb = 0
    base = table_base[k]
    pbase = perm_base[k]
    count = np.zeros(1, dtype=np.int64)  # hits so far (written or not)
    start = 0
    for b in range(n_bins):
        end = cursor[b]
        high = np.uint64(b) << low_bits
        for i in range(start, end):
            key = keys[i]
            ql = np.int64(key & _QUERY_MASK)
            qi = q0 + ql
            if to_scan[qi]:
                continue
            x = base + np.int64(high | np.uint64(key >> np.uint32(_QUERY_BITS))) * bits
            lo = unpack(offsets, x, bits)
            hi = unpack(offsets, x + bits, bits)
            if hi == lo:
                continue
            seen_here[ql] += hi - lo
            if seen_here[ql] > chunk_limit:
                to_scan[qi] = 1
                continue
            for p in range(lo, hi):
                if nb == _BATCH_BUFFER:
                    _check_candidates(
                        words, starts, widths, radii, queries, qvals, k, radius, buf_rows,
                        buf_q, nb, out_q, out_rows, out_dist, count,
                    )  # fmt: skip
                    nb = 0
                buf_rows[nb] = unpack(perms, pbase + p * bits, bits)
                buf_q[nb] = qi
                nb += 1
        start = end
    _check_candidates(
        words, starts, widths, radii, queries, qvals, k, radius, buf_rows, buf_q, nb, out_q,
        out_rows, out_dist, count,
    )  # fmt: skip
    return int(count[0])


@jit
def _check_candidates(
    words: NDArray[np.uint64],
    starts: NDArray[np.int64],
    widths: NDArray[np.int64],
    radii: NDArray[np.int64],
    queries: NDArray[np.uint64],
    qvals: NDArray[np.uint64],
    k: int,
    radius: int,
    buf_rows: NDArray[np.int64],
    buf_q: NDArray[np.int64],
    nb: int,
    out_q: NDArray[np.int64],
    out_rows: NDArray[np.int64],
    out_dist: NDArray[np.int16],
    count: NDArray[np.int64],
) -> None:
    """Check ``nb`` gathered candidates of chunk ``k``; ``count[0]`` counts the hits."""
    cap = out_rows.shape[0]
    n = count[0]
    for c in range(min(nb, _PREFETCH_AHEAD)):
        prefetch(words, buf_rows[c])
    for c in range(nb):
        if c + _PREFETCH_AHEAD < nb:
            prefetch(words, buf_rows[c + _PREFETCH_AHEAD])
        row = buf_rows[c]
        q = buf_q[c]
        d = _distance(words, row, queries, q)
        if d > radius:
            continue
        seen = False  # found already through an earlier chunk?
        for j in range(k):
            if radii[j] >= 0:
                cj = _chunk(words, row, starts[j], widths[j])
                if np.int64(popcount64(cj ^ qvals[q, j])) <= radii[j]:
                    seen = True
                    break
        if seen:
            continue
        if n < cap:
            out_q[n] = q
            out_rows[n] = row
            out_dist[n] = d
        n += 1
    count[0] = n


@jit
def query_chunks(
    queries: NDArray[np.uint64], starts: NDArray[np.int64], widths: NDArray[np.int64]
) -> NDArray[np.uint64]:
    """``(n, m)`` chunk values of each query."""
    out = np.empty((queries.shape[0], starts.shape[0]), dtype=np.uint64)
    for q in range(queries.shape[0]):
        for k in range(starts.shape[0]):
            out[q, k] = _chunk(queries, q, starts[k], widths[k])
    return out


@pjit
def search_batch(
    words: NDArray[np.uint64],
    perms: NDArray[np.uint64],
    offsets: NDArray[np.uint64],
    table_base: NDArray[np.int64],
    perm_base: NDArray[np.int64],
    bits: int,
    starts: NDArray[np.int64],
    widths: NDArray[np.int64],
    radii: NDArray[np.int64],
    masks: NDArray[np.uint64],
    mask_starts: NDArray[np.int64],
    mask_counts: NDArray[np.int64],
    queries: NDArray[np.uint64],
    qvals: NDArray[np.uint64],
    radius: int,
    chunk_limit: int,
    unit_chunk: NDArray[np.int64],
    unit_q0: NDArray[np.int64],
    unit_q1: NDArray[np.int64],
    unit_out: NDArray[np.int64],
    out_q: NDArray[np.int64],
    out_rows: NDArray[np.int64],
    out_dist: NDArray[np.int16],
    unit_counts: NDArray[np.int64],
    to_scan: NDArray[np.uint8],
) -> None:
    """Run every unit (one chunk, one group of queries) over the cores.

    Unit ``u`` writes its hits to ``out_*[unit_out[u]:unit_out[u + 1]]`` and its hit count
    to ``unit_counts[u]``; a count above that room means the unit must run again with more.
    """
    for u in prange(unit_chunk.shape[0]):
        a = unit_out[u]
        b = unit_out[u + 1]
        unit_counts[u] = _batch_unit(
            words, perms, offsets, table_base, perm_base, bits, starts, widths, radii, masks,
            mask_starts, mask_counts, queries, qvals, unit_chunk[u], unit_q0[u], unit_q1[u], radius,
            chunk_limit, to_scan, out_q[a:b], out_rows[a:b], out_dist[a:b],
        )  # fmt: skip
