"""Brute-force exact PDQ search: the correctness oracle, and fine for small banks."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from amparo.errors import InternalError
from amparo.index.base import IndexHits, check_queries
from amparo.signals.pdq import PDQ_BYTES, hamming_matrix


class BruteForcePdqIndex:
    """Keeps ids and hashes in arrays and compares every query with every entry."""

    def __init__(self) -> None:
        self._ids = np.zeros(0, dtype=np.int64)
        self._hashes = np.zeros((0, PDQ_BYTES), dtype=np.uint8)

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def add(self, ids: NDArray[np.int64], hashes: NDArray[np.uint8]) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        hashes = np.asarray(hashes, dtype=np.uint8).reshape(-1, PDQ_BYTES)
        if ids.shape[0] != hashes.shape[0]:
            raise InternalError("ids and hashes differ in length")  # a caller's bug
        self.remove(ids)
        self._ids = np.concatenate([self._ids, ids])
        self._hashes = np.concatenate([self._hashes, hashes])

    def remove(self, ids: NDArray[np.int64]) -> None:
        if len(ids) == 0 or len(self._ids) == 0:
            return
        keep = ~np.isin(self._ids, np.asarray(ids, dtype=np.int64))
        self._ids = self._ids[keep]
        self._hashes = self._hashes[keep]

    def search(self, queries: NDArray[np.uint8], radius: int) -> IndexHits:
        q = check_queries(queries, radius)
        if len(self._ids) == 0 or q.shape[0] == 0:
            return IndexHits.empty()
        parts_q, parts_i, parts_d = [], [], []
        step = max(1, 4_000_000 // max(1, len(self._ids)))
        for start in range(0, q.shape[0], step):
            dist = hamming_matrix(q[start : start + step], self._hashes)
            qi, ei = np.nonzero(dist <= radius)
            parts_q.append(qi.astype(np.int64) + start)
            parts_i.append(self._ids[ei])
            parts_d.append(dist[qi, ei])
        return IndexHits(
            np.concatenate(parts_q), np.concatenate(parts_i), np.concatenate(parts_d)
        ).sorted()
