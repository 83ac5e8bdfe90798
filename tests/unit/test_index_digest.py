"""The digest table finds exactly the entries whose md5/sha1/sha256 equals the query's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from amparo.errors import InternalError
from amparo.index import DIGEST_WIDTHS, DigestSegment, SegmentedDigestTable


def oracle(entries: dict[int, bytes], queries: NDArray[np.uint8]) -> list[tuple[int, int]]:
    by_digest: dict[bytes, list[int]] = {}
    for entry_id, digest in entries.items():
        by_digest.setdefault(digest, []).append(entry_id)
    return sorted(
        (qi, entry_id) for qi, q in enumerate(queries) for entry_id in by_digest.get(bytes(q), [])
    )


def pairs(hits: object) -> list[tuple[int, int]]:
    return list(zip(hits.query.tolist(), hits.ids.tolist(), strict=True))  # type: ignore[attr-defined]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    algorithm=st.sampled_from(sorted(DIGEST_WIDTHS)),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 400),
    id_span=st.sampled_from([1, 300, 70_000, 2**40, 2**62]),
    shared_prefixes=st.booleans(),
)
def test_segment_lookup_is_exact(
    algorithm: str, seed: int, n: int, id_span: int, shared_prefixes: bool
) -> None:
    rng = np.random.default_rng(seed)
    width = DIGEST_WIDTHS[algorithm]
    digests = rng.integers(0, 256, (n, width), dtype=np.uint8)
    if n > 4:
        digests[1 : n // 3] = digests[0]  # the same file in several banks
    if shared_prefixes:
        digests[:, :6] = 0  # crowd one bucket
    ids = np.unique(rng.integers(-(2**62), 2**62, n) % max(id_span, n) - id_span // 2)
    digests = digests[: len(ids)]
    entries = {int(i): bytes(d) for i, d in zip(ids, digests, strict=True)}
    segment = DigestSegment.build(algorithm, ids, digests)
    queries = np.concatenate([digests[:30], rng.integers(0, 256, (10, width), dtype=np.uint8)])
    assert pairs(segment.lookup(queries)) == oracle(entries, queries)
    assert sorted(map(bytes, segment.digests)) == sorted(entries.values())
    assert sorted(segment.ids.tolist()) == sorted(entries)


def test_records_are_compact() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    segment = DigestSegment.build(
        "md5", np.arange(n) + 10**12, rng.integers(0, 256, (n, 16), dtype=np.uint8)
    )
    assert segment.id_bytes == 3
    assert segment.nbytes <= 1.2 * n * 16


def test_live_table_updates_and_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    table = SegmentedDigestTable.open("sha1", tmp_path, create=True)
    digests = rng.integers(0, 256, (100, 20), dtype=np.uint8)
    digests[50:60] = digests[0]
    table.apply(np.arange(100), digests, checkpoint=5)
    table.compact()
    table.apply(np.arange(100, 110), digests[:10], remove_ids=np.array([1, 2, 50]), checkpoint=6)
    table.add(np.array([3]), np.full((1, 20), 7, np.uint8))  # replaces id 3's digest
    entries = {i: bytes(d) for i, d in enumerate(digests) if i not in (1, 2, 50)}
    entries.update({100 + i: bytes(d) for i, d in enumerate(digests[:10])})
    entries[3] = bytes(np.full(20, 7, np.uint8))
    queries = np.concatenate([digests[:12], np.full((1, 20), 7, np.uint8)])
    assert pairs(table.lookup(queries)) == oracle(entries, queries)
    assert len(table) == len(entries) and table.checkpoint == 6
    table.compact()
    reopened = SegmentedDigestTable.open("sha1", tmp_path, verify=True)
    assert pairs(reopened.lookup(queries)) == oracle(entries, queries)
    assert reopened.checkpoint == 6 and reopened.stats().tombstones == 0


def test_rejects_bad_input() -> None:
    with pytest.raises(InternalError):
        SegmentedDigestTable("crc32")
    with pytest.raises(InternalError):
        SegmentedDigestTable("md5").lookup(np.zeros((1, 20), np.uint8))
    assert len(SegmentedDigestTable("md5").lookup(np.zeros((1, 16), np.uint8))) == 0
