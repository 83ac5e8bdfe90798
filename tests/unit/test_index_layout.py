"""PDQ segment layout 2 (issue #19): packed tables, narrow ids, older files refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from amparo.errors import IndexCorruptError
from amparo.index import BruteForcePdqIndex, PdqSegment, SegmentedPdqIndex, mih
from amparo.index.pdq_segment import LAYOUT, choose_chunks, packed_layout
from amparo.index.segment_file import write_segment


def hashes(n: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32), dtype=np.uint8)


def test_bytes_per_hash_at_100_million_is_at_most_80() -> None:
    n = 100_000_000
    _, widths = mih.chunk_layout(11)  # the fewest chunks, which the chooser takes at 100M
    bits, _, _, (perm_words, table_words) = packed_layout(n, widths)
    assert bits == 27
    per_hash = 32 + 4 + 8 * (perm_words + table_words) / n
    assert per_hash <= 80, per_hash


@pytest.mark.parametrize(
    "ids",
    [
        np.arange(5, 5 + 3000, dtype=np.int64) * 7,  # fits uint32
        np.arange(3000, dtype=np.int64) + (1 << 32) - 1500,  # straddles 2**32
        np.arange(3000, dtype=np.int64) - 10,  # negative ids
    ],
)
def test_ids_stored_narrow_when_they_fit_and_found_exactly(ids: np.ndarray) -> None:
    data = hashes(len(ids))
    shuffled = np.random.default_rng(1).permutation(len(ids))
    segment = PdqSegment.build(ids[shuffled], data[shuffled])
    fits = bool(ids.min() >= 0 and ids.max() < 1 << 32)
    assert segment.ids.dtype == (np.uint32 if fits else np.int64)
    probe = np.concatenate([ids[:5], ids[-5:], [-1, 1 << 40, (1 << 32) + int(ids[0])]])
    expected = np.isin(probe, ids)
    assert segment.contains(probe).tolist() == expected.tolist()
    queries = data[:40].copy()
    queries[:, :2] ^= 0x0F
    got = segment.search(queries, 31)
    brute = BruteForcePdqIndex()
    brute.add(ids, data)
    want = brute.search(queries, 31)
    assert got.ids.dtype == np.int64
    assert got.ids.tolist() == want.ids.tolist()
    assert got.query.tolist() == want.query.tolist()


@pytest.mark.parametrize("n", [1, 2, 63, 64, 65, 1000, 4097])
def test_packed_tables_at_every_width_match_brute_force(n: int) -> None:
    data = hashes(n, seed=n)
    ids = np.arange(n, dtype=np.int64)
    for chunks in (11, 16, 32):
        segment = PdqSegment.build(ids, data, chunks=chunks)
        got = segment.search(data[: min(n, 20)], 40)
        assert sorted(zip(got.query.tolist(), got.ids.tolist(), strict=True)) == sorted(
            (q, i)
            for q in range(min(n, 20))
            for i in range(n)
            if int(np.unpackbits(data[q] ^ data[i]).sum()) <= 40
        )


def test_round_trip_and_bulk_build(tmp_path: Path) -> None:
    data = hashes(5000)
    ids = np.arange(1, 5001, dtype=np.int64)
    index = SegmentedPdqIndex.bulk_build(tmp_path, ids, data, checkpoint=9)
    again = SegmentedPdqIndex.bulk_build(tmp_path, ids[:100], data[:100], checkpoint=10)
    assert len(list(tmp_path.glob("pdq-*.seg"))) == 1  # the first build's file is gone
    reopened = SegmentedPdqIndex.open(tmp_path, verify=True)
    assert len(reopened) == 100 and reopened.checkpoint == 10 and len(again) == 100
    assert reopened.search(data[:3], 0).ids.tolist() == [1, 2, 3]
    assert len(index) == 5000  # the mapping of a replaced file stays readable


def test_segment_of_an_older_layout_is_refused_with_the_rebuild_hint(tmp_path: Path) -> None:
    data = hashes(500)
    index = SegmentedPdqIndex.open(tmp_path, create=True)
    index.apply(np.arange(500), data, checkpoint=1)
    index.compact()
    path = next(tmp_path.glob("pdq-*.seg"))
    # Layout 1 wrote int64 ids, (m, n) uint32 permutations and uint32 tables, no "layout".
    words = mih.as_words(data)
    m = choose_chunks(words)
    starts, widths = mih.chunk_layout(m)
    meta = {"entries": 500, "chunks": m, "chunk_starts": starts.tolist()}
    write_segment(
        path,
        "pdq",
        meta,
        {
            "ids": np.arange(500, dtype=np.int64),
            "hashes": data,
            "perms": np.zeros((m, 500), np.uint32),
            "offsets": np.zeros(int(((1 << widths) + 1).sum()), np.uint32),
        },
    )
    with pytest.raises(IndexCorruptError) as err:
        SegmentedPdqIndex.open(tmp_path)
    assert "layout 1" in str(err.value) and f"layout {LAYOUT}" in str(err.value)
    assert "amparo index rebuild" in str(err.value)
