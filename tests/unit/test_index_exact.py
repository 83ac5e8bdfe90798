"""The multi-index-hashing PDQ index returns exactly what brute force returns."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from amparo.errors import InternalError
from amparo.index import (
    BruteForcePdqIndex,
    IndexHits,
    PdqSegment,
    SegmentedPdqIndex,
    base,
    pdq_segment,
)
from amparo.index.mih import chunk_radii

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHUNKS = st.sampled_from([None, 11, 12, 16, 21, 32])
# scan_ratio 0 forces every query through the linear scan, infinity through the lookups.
SCAN_RATIOS = st.sampled_from([0.0, 0.125, float("inf")])
# "batch" forces the batched kernel, which large batches on large segments take.
KERNELS = st.sampled_from(["auto", "batch"])


@contextmanager
def kernel(name: str) -> Iterator[None]:
    """Run the block with the batched kernel forced on (``batch``) or chosen as usual."""
    if name == "auto":
        yield
        return
    with (
        patch.object(pdq_segment, "BATCH_MIN_ENTRIES", 0),
        patch.object(pdq_segment, "BATCH_MIN_QUERIES", 0),
    ):
        yield


def flip_bits(rng: np.random.Generator, h: NDArray[np.uint8], k: int) -> NDArray[np.uint8]:
    """A copy of ``h`` with exactly ``k`` distinct bits flipped."""
    out = h.copy()
    for bit in rng.choice(256, size=k, replace=False):
        out[bit // 8] ^= np.uint8(1 << (bit % 8))
    return out


def low_entropy(rng: np.random.Generator, n: int) -> NDArray[np.uint8]:
    """All-zero, all-one and few-bits-set hashes: the worst case for chunk buckets."""
    base = [np.zeros(32, np.uint8), np.full(32, 255, np.uint8)]
    rows = [flip_bits(rng, base[i % 2], int(rng.integers(0, 6))) for i in range(n)]
    return np.array(rows, dtype=np.uint8).reshape(-1, 32)


def families(rng: np.random.Generator, n: int, radius: int) -> NDArray[np.uint8]:
    """Families of near-duplicates around a few centres, at every distance up to radius+2."""
    centres = rng.integers(0, 256, (max(1, n // 10), 32), dtype=np.uint8)
    rows = [
        flip_bits(rng, centres[i % len(centres)], int(rng.integers(0, radius + 3)))
        for i in range(n)
    ]
    return np.array(rows, dtype=np.uint8).reshape(-1, 32)


def dataset(kind: str, rng: np.random.Generator, n: int, radius: int) -> NDArray[np.uint8]:
    if kind == "random":
        return rng.integers(0, 256, (n, 32), dtype=np.uint8)
    if kind == "low_entropy":
        return low_entropy(rng, n)
    if kind == "families":
        return families(rng, n, radius)
    mixed = [
        rng.integers(0, 256, (n // 3, 32), dtype=np.uint8),
        low_entropy(rng, n // 3),
        families(rng, n - 2 * (n // 3), radius),
    ]
    return np.concatenate(mixed)


def queries_for(
    rng: np.random.Generator, hashes: NDArray[np.uint8], radius: int
) -> NDArray[np.uint8]:
    """Queries at every distance 0..radius+1 from stored hashes, plus unrelated ones."""
    qs = [rng.integers(0, 256, (3, 32), dtype=np.uint8), np.zeros((1, 32), np.uint8)]
    if len(hashes):
        for k in range(radius + 2):
            qs.append(flip_bits(rng, hashes[int(rng.integers(0, len(hashes)))], k)[None, :])
    return np.concatenate(qs)


def assert_same(got: IndexHits, expected: IndexHits) -> None:
    assert got.query.tolist() == expected.query.tolist()
    assert got.ids.tolist() == expected.ids.tolist()
    assert got.distances.tolist() == expected.distances.tolist()


def oracle(ids: NDArray[np.int64], hashes: NDArray[np.uint8]) -> BruteForcePdqIndex:
    brute = BruteForcePdqIndex()
    brute.add(ids, hashes)
    return brute


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 300),
    radius=st.one_of(st.sampled_from([0, 1, 8, 16, 31, 32, 63]), st.integers(0, 63)),
    kind=st.sampled_from(["random", "low_entropy", "families", "mixed"]),
    chunks=CHUNKS,
    scan_ratio=SCAN_RATIOS,
    kernel_name=KERNELS,
)
def test_segment_matches_brute_force(
    seed: int,
    n: int,
    radius: int,
    kind: str,
    chunks: int | None,
    scan_ratio: float,
    kernel_name: str,
) -> None:
    rng = np.random.default_rng(seed)
    hashes = dataset(kind, rng, n, radius)
    ids = rng.permutation(10 * n + 1)[: len(hashes)].astype(np.int64) - 5
    queries = queries_for(rng, hashes, radius)
    segment = PdqSegment.build(ids, hashes, chunks=chunks)
    with kernel(kernel_name):
        got = segment.search(queries, radius, scan_ratio=scan_ratio)
    assert_same(got, oracle(ids, hashes).search(queries, radius))


def test_every_distance_up_to_the_radius_is_found_and_no_further() -> None:
    rng = np.random.default_rng(7)
    centre = rng.integers(0, 256, 32, dtype=np.uint8)
    hashes = np.array([flip_bits(rng, centre, k) for k in range(64)])
    segment = PdqSegment.build(np.arange(64), hashes, chunks=11)
    for radius in (0, 15, 31, 63):
        hits = segment.search(centre[None, :], radius, scan_ratio=float("inf"))
        assert sorted(hits.distances.tolist()) == list(range(radius + 1))


@pytest.mark.parametrize("kernel_name", ["auto", "batch"])
def test_identical_hashes_all_match(kernel_name: str) -> None:
    hashes = np.zeros((500, 32), np.uint8)
    segment = PdqSegment.build(np.arange(500), hashes)
    for ratio in (0.0, 0.125, float("inf")):
        with kernel(kernel_name):
            hits = segment.search(np.zeros((2, 32), np.uint8), 0, scan_ratio=ratio)
        assert len(hits) == 1000
        assert hits.ids.tolist() == list(range(500)) * 2


@pytest.mark.parametrize("m", [11, 12, 13, 16, 20, 32])
def test_refined_pigeonhole_radii_cover_the_radius(m: int) -> None:
    # Any split of r+1 differing bits over the chunks must exceed some chunk's radius,
    # and the radii must sum to r - m + 1 (the tight bound).
    for radius in range(64):
        radii = chunk_radii(m, radius)
        assert int(np.sum(radii + 1)) == radius + 1


def test_large_result_sets_and_many_queries() -> None:
    rng = np.random.default_rng(3)
    hashes = families(rng, 2000, 31)
    ids = np.arange(2000, dtype=np.int64)
    queries = np.concatenate([hashes[:200], queries_for(rng, hashes, 31)])
    segment = PdqSegment.build(ids, hashes, chunks=16)
    expected = oracle(ids, hashes).search(queries, 31)
    for ratio in (0.0, float("inf")):
        assert_same(segment.search(queries, 31, scan_ratio=ratio), expected)
        with kernel("batch"):
            assert_same(segment.search(queries, 31, scan_ratio=ratio), expected)


def test_batched_kernel_reruns_units_whose_hits_overflow() -> None:
    # 3,000 queries each matching the same 600 near-duplicates: far more hits than a unit's
    # first output buffer holds (4 per query), so the units run again with room for all.
    rng = np.random.default_rng(11)
    centre = rng.integers(0, 256, 32, dtype=np.uint8)
    hashes = np.array([flip_bits(rng, centre, int(rng.integers(0, 8))) for _ in range(600)])
    others = rng.integers(0, 256, (5000, 32), dtype=np.uint8)
    everything = np.concatenate([hashes, others])
    ids = np.arange(len(everything), dtype=np.int64)
    queries = np.array([flip_bits(rng, centre, int(rng.integers(0, 10))) for _ in range(3000)])
    segment = PdqSegment.build(ids, everything, chunks=12)
    with kernel("batch"):
        assert segment.use_batch_kernel(len(queries))
        got = segment.search(queries, 31, scan_ratio=float("inf"))
    assert len(got) > 3000 * 500
    assert_same(got, oracle(ids, everything).search(queries, 31))


def test_rejects_bad_input() -> None:
    with pytest.raises(InternalError):
        PdqSegment.build(np.array([1, 1]), np.zeros((2, 32), np.uint8))
    with pytest.raises(InternalError):
        PdqSegment.build(np.array([1]), np.zeros((2, 32), np.uint8))
    with pytest.raises(InternalError):
        PdqSegment.build(np.array([1]), np.zeros((1, 32), np.uint8), chunks=8)
    with pytest.raises(InternalError):
        SegmentedPdqIndex().search(np.zeros((1, 32), np.uint8), 64)
    with pytest.raises(InternalError):
        SegmentedPdqIndex().search(np.zeros((1, 31), np.uint8), 31)


def test_empty_index_and_empty_queries() -> None:
    index = SegmentedPdqIndex()
    assert len(index) == 0
    assert len(index.search(np.zeros((3, 32), np.uint8), 31)) == 0
    index.add(np.array([1]), np.zeros((1, 32), np.uint8))
    assert len(index.search(np.zeros((0, 32), np.uint8), 31)) == 0
    assert index.search(np.zeros(32, np.uint8), 31).ids.tolist() == [1]


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 3000),
    queries=st.integers(1, 50),
    kernel_name=st.sampled_from(["lexsort", "kernel"]),
)
def test_hits_are_ordered_by_query_distance_id(
    seed: int, n: int, queries: int, kernel_name: str
) -> None:
    # One hit per (query, id), as the indexes return them; ids may be negative.
    rng = np.random.default_rng(seed)
    pairs = rng.choice(queries * 4 * max(n, 1), size=n, replace=False)
    query = (pairs % queries).astype(np.int64)
    ids = (pairs // queries).astype(np.int64) - 2 * n
    dist = rng.integers(0, 64, n).astype(np.int16)
    with patch.object(base, "_KERNEL_SORT_MIN", 0 if kernel_name == "kernel" else 10**9):
        got = IndexHits(query, ids, dist).sorted()
    order = np.lexsort((ids, dist, query))
    assert got.query.tolist() == query[order].tolist()
    assert got.ids.tolist() == ids[order].tolist()
    assert got.distances.tolist() == dist[order].tolist()
