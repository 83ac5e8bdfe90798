"""Live updates, compaction and save/open round-trips stay exactly equal to brute force."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_index_exact import families, flip_bits, low_entropy

from amparo.index import BruteForcePdqIndex, IndexHits, SegmentedPdqIndex
from amparo.index.live import MANIFEST

OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "readd", "compact", "reopen", "apply"]),
        st.integers(0, 60),
    ),
    min_size=1,
    max_size=12,
)


def assert_same(got: IndexHits, expected: IndexHits) -> None:
    assert got.query.tolist() == expected.query.tolist()
    assert got.ids.tolist() == expected.ids.tolist()
    assert got.distances.tolist() == expected.distances.tolist()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
    HealthCheck.function_scoped_fixture])  # fmt: skip
@given(seed=st.integers(0, 2**32 - 1), ops=OPS, radius=st.sampled_from([0, 4, 31, 40]))
def test_updates_compactions_and_reopens_match_brute_force(
    tmp_path_factory: pytest.TempPathFactory, seed: int, ops: list[tuple[str, int]], radius: int
) -> None:
    directory = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(seed)
    pool = np.concatenate([families(rng, 80, 31), low_entropy(rng, 20)])
    index = SegmentedPdqIndex.open(directory, create=True, chunks=int(rng.choice([12, 16, 32])))
    model = BruteForcePdqIndex()
    next_id = 0
    present: list[int] = []
    for step, (op, k) in enumerate(ops):
        if op in ("add", "apply"):
            ids = np.arange(next_id, next_id + k, dtype=np.int64)
            next_id += k
            hashes = pool[rng.integers(0, len(pool), k)]
            removes = np.array(rng.choice(present, size=min(len(present), k // 3), replace=False)
                               if present and op == "apply" else [], dtype=np.int64)  # fmt: skip
            index.apply(add_ids=ids, add_keys=hashes, remove_ids=removes, checkpoint=step)
            model.remove(removes)
            model.add(ids, hashes)
            present = sorted((set(present) - set(removes.tolist())) | set(ids.tolist()))
        elif op == "remove" and present:
            gone = np.array(rng.choice(present, size=min(len(present), k), replace=False))
            gone = np.concatenate([gone, [10**9]])  # unknown ids are ignored
            index.remove(gone)
            model.remove(gone)
            present = sorted(set(present) - set(gone.tolist()))
        elif op == "readd" and present:
            again = np.array(rng.choice(present, size=min(len(present), k), replace=False))
            hashes = pool[rng.integers(0, len(pool), len(again))]
            index.add(again, hashes)
            model.add(again, hashes)
        elif op == "compact":
            index.compact()
        elif op == "reopen":
            index.compact()
            checkpoint = index.checkpoint
            index = SegmentedPdqIndex.open(directory)
            assert index.checkpoint == checkpoint
        assert len(index) == len(model) == len(present)
    queries = np.concatenate([pool[:10], flip_bits(rng, pool[0], radius)[None, :]])
    assert_same(index.search(queries, radius), model.search(queries, radius))
    index.compact()
    reopened = SegmentedPdqIndex.open(directory, verify=True)
    assert_same(reopened.search(queries, radius), model.search(queries, radius))
    assert reopened.stats().segments == 1
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [MANIFEST, *json.loads((directory / MANIFEST).read_text())["segments"][0]["file"].split()]
    )


def test_ten_thousand_adds_are_visible_within_a_second(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    index = SegmentedPdqIndex.open(tmp_path, create=True)
    index.apply(np.arange(50_000), rng.integers(0, 256, (50_000, 32), dtype=np.uint8))
    index.compact()
    new = rng.integers(0, 256, (10_000, 32), dtype=np.uint8)
    start = time.perf_counter()
    index.apply(np.arange(50_000, 60_000), new, checkpoint=9)
    hits = index.search(new[-5:], 0)
    assert time.perf_counter() - start < 1.0
    assert hits.ids.tolist() == list(range(59_995, 60_000))
    assert index.checkpoint == 9


def test_stats_and_checkpoint_survive_reopen(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    index = SegmentedPdqIndex.open(tmp_path, create=True)
    index.apply(np.arange(100), rng.integers(0, 256, (100, 32), dtype=np.uint8), checkpoint=41)
    index.compact()
    index.apply(np.arange(100, 110), rng.integers(0, 256, (10, 32), dtype=np.uint8))
    index.remove(np.arange(5))
    stats = index.stats()
    assert (stats.entries, stats.segments, stats.delta_entries, stats.tombstones) == (
        105, 1, 10, 5,
    )  # fmt: skip
    assert stats.bytes_on_disk > 100 * 32 and stats.resident_bytes > 110 * 32
    # Unsaved changes are not on disk: a reopened index is at the saved checkpoint.
    reopened = SegmentedPdqIndex.open(tmp_path)
    assert (len(reopened), reopened.checkpoint) == (100, 41)


def test_changes_during_compaction_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 256, (30, 32), dtype=np.uint8)
    index = SegmentedPdqIndex.open(tmp_path, create=True)
    index.apply(np.arange(20), hashes[:20], checkpoint=1)
    build = index._build

    def build_and_race(ids: np.ndarray, keys: np.ndarray):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(index, "_build", build)
        index.apply(np.arange(20, 30), hashes[20:], remove_ids=np.array([0]), checkpoint=2)
        return build(ids, keys)

    monkeypatch.setattr(index, "_build", build_and_race)
    index.compact()
    assert len(index) == 29 and index.checkpoint == 2
    assert index.search(hashes[[0, 25]], 0).ids.tolist() == [25]
    assert SegmentedPdqIndex.open(tmp_path).checkpoint == 1


def test_warm_faults_segments_in_and_changes_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    hashes = rng.integers(0, 256, (500, 32), dtype=np.uint8)
    index = SegmentedPdqIndex.open(tmp_path, create=True)
    index.apply(np.arange(500), hashes, checkpoint=1)
    index.compact()
    reopened = SegmentedPdqIndex.open(tmp_path)
    before = reopened.search(hashes[:20], 31)
    reopened.warm()
    assert_same(reopened.search(hashes[:20], 31), before)
    assert len(reopened) == 500 and reopened.checkpoint == 1
    # An empty index (nothing mapped) warms too.
    SegmentedPdqIndex.open(tmp_path / "empty", create=True).warm()
