"""The PDQ index interface: exact Hamming-radius search over packed 256-bit hashes.

Every implementation must return *exactly* the entries within the radius: a miss is abuse
material left online. The brute-force index is the oracle the fast ones are tested against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from amparo.signals.pdq import PDQ_BYTES

MAX_RADIUS = 63


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
        order = np.lexsort((self.ids, self.distances, self.query))
        return IndexHits(self.query[order], self.ids[order], self.distances[order])


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
    if not 0 <= radius <= MAX_RADIUS:
        raise ValueError(f"radius must be between 0 and {MAX_RADIUS}, got {radius}")
    q = np.ascontiguousarray(queries, dtype=np.uint8)
    if q.ndim == 1:
        q = q.reshape(1, -1)
    if q.ndim != 2 or q.shape[1] != PDQ_BYTES:
        raise ValueError(f"queries must have shape (n, {PDQ_BYTES}), got {queries.shape}")
    return q
