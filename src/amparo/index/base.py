"""The PDQ index interface: exact Hamming-radius search over packed 256-bit hashes.

Every implementation must return *exactly* the entries within the radius: a miss is abuse
material left online. The brute-force index is the oracle the fast ones are tested against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numba
import numpy as np
from numpy.typing import NDArray

from amparo.errors import InternalError
from amparo.index._jit import pjit, prange
from amparo.signals.pdq import PDQ_BYTES

MAX_RADIUS = 63
# From this many hits on, IndexHits.sorted uses its kernel (fewer: np.lexsort, which needs no
# thread start-up).
_KERNEL_SORT_MIN = 50_000


@dataclass(frozen=True)
class IndexHits:
    """Flat search results, sorted by query position then distance then id.

    ``query[i]`` is the position in the query batch of hit ``i``; ``ids[i]`` the entry id;
    ``distances[i]`` its Hamming distance.
    """

    query: NDArray[np.int64]
    ids: NDArray[np.int64]
    distances: NDArray[np.int16]

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def empty(cls) -> IndexHits:
        return cls(
            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int16)
        )

    def sorted(self) -> IndexHits:
        """Ordered by query position, then distance, then id (an entry is hit at most once
        per query)."""
        if len(self) < 2:
            return self
        if len(self) < _KERNEL_SORT_MIN:
            order = np.lexsort((self.ids, self.distances, self.query))
        else:
            # Dynamic scheduling: a few queries may hold most of the hits.
            with numba.parallel_chunksize(64):
                order = _hit_order(self.query, self.ids, self.distances)
        return IndexHits(self.query[order], self.ids[order], self.distances[order])


@pjit
def _hit_order(
    query: NDArray[np.int64], ids: NDArray[np.int64], dist: NDArray[np.int16]
) -> NDArray[np.int64]:
    """The order of ``IndexHits.sorted``: a counting sort by query, then in each query's
    hits a sort by id and a stable counting sort by distance (0..63). Several times faster
    than ``np.lexsort`` of the three keys when there are millions of hits."""
    n = query.shape[0]
    nq = np.int64(0)
    for i in range(n):
        nq = max(nq, query[i] + 1)
    starts = np.zeros(nq + 1, dtype=np.int64)
    for i in range(n):
        starts[query[i] + 1] += 1
    for g in range(nq):
        starts[g + 1] += starts[g]
    cursor = starts[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[cursor[query[i]]] = i
        cursor[query[i]] += 1
    for g in prange(nq):
        a = starts[g]
        b = starts[g + 1]
        if b - a < 2:
            continue
        group = order[a:b].copy()
        group = group[np.argsort(ids[group])]
        slots = np.zeros(MAX_RADIUS + 2, dtype=np.int64)
        for r in group:
            slots[dist[r] + 1] += 1
        for v in range(MAX_RADIUS + 1):
            slots[v + 1] += slots[v]
        for r in group:
            order[a + slots[dist[r]]] = r
            slots[dist[r]] += 1
    return order


class PdqIndex(Protocol):
    """Exact radius search over (id, packed PDQ hash) pairs."""

    def __len__(self) -> int: ...

    def add(self, ids: NDArray[np.int64], hashes: NDArray[np.uint8]) -> None:
        """Add entries; ``hashes`` is ``(n, 32)`` uint8. Re-adding an id replaces it."""

    def remove(self, ids: NDArray[np.int64]) -> None:
        """Remove entries by id; unknown ids are ignored."""

    def search(self, queries: NDArray[np.uint8], radius: int) -> IndexHits:
        """Every entry within ``radius`` bits of each query (``(n, 32)`` uint8)."""
        ...


def check_queries(queries: NDArray[np.uint8], radius: int) -> NDArray[np.uint8]:
    """``queries`` as a contiguous ``(n, 32)`` array. Radii come from validated thresholds
    (settings, bank options) and queries from the hashers, so a failure here is a bug."""
    if not 0 <= radius <= MAX_RADIUS:
        raise InternalError(f"radius must be between 0 and {MAX_RADIUS}, got {radius}")
    q = np.ascontiguousarray(queries, dtype=np.uint8)
    if q.ndim == 1:
        q = q.reshape(1, -1)
    if q.ndim != 2 or q.shape[1] != PDQ_BYTES:
        raise InternalError(f"queries must have shape (n, {PDQ_BYTES}), got {queries.shape}")
    return q
