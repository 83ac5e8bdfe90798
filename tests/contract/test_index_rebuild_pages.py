"""The indexes' rebuild and catch-up read the store in pages (issue #19): the same index as
building from whole rows, whatever the page size, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from amparo.banks.model import BankInfo, EntryRecord
from amparo.index import SegmentedDigestTable, SegmentedPdqIndex
from amparo.indexing import DIGESTS, KINDS, PDQ, SignalIndexes, keys_of
from amparo.store import Store

PAGE = 7  # small, and no divisor of the entry counts: pages end mid-type and mid-change


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    yield s
    s.close()


def _records(rng: random.Random, n: int) -> list[EntryRecord]:
    out = []
    for _ in range(n):
        out.append(EntryRecord("pdq", f"{rng.getrandbits(256):064x}"))
        out.append(EntryRecord("md5", f"{rng.getrandbits(128):032x}"))
    return out


def _fill(store: Store, seed: int, n: int) -> list[EntryRecord]:
    records = _records(random.Random(seed), n)
    store.banks.add_entries("b", records, actor="t")
    return records


def _whole_rows(store: Store, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Every active entry of ``kind`` as the old rebuild read it: whole rows, then arrays."""
    rows = [r for batch in store.changes.iter_active_signals(kind) for r in batch]
    ids = np.array([i for i, _ in rows], dtype=np.int64)
    return ids, keys_of(kind, [s for _, s in rows])


def _contents(indexes: SignalIndexes) -> dict[str, dict[int, bytes]]:
    out = {}
    for kind, index in {PDQ: indexes.pdq, **indexes.digests}.items():
        ids, keys = index.items()
        out[kind] = dict(zip(ids.tolist(), (k.tobytes() for k in keys), strict=True))
    return out


def _reference(store: Store) -> dict[str, dict[int, bytes]]:
    return {
        kind: dict(zip(ids.tolist(), (k.tobytes() for k in keys), strict=True))
        for kind in KINDS
        for ids, keys in [_whole_rows(store, kind)]
    }


def test_rebuild_in_small_pages_matches_whole_rows(store: Store, tmp_path: Path) -> None:
    store.banks.create(BankInfo(name="b"), actor="t")
    records = _fill(store, 1, 120)
    store.banks.remove_entries("b", [(r.signal_type, r.signal) for r in records[:9]], actor="t")
    store.banks.set_entries_enabled(
        "b", [(r.signal_type, r.signal) for r in records[20:25]], False, actor="t"
    )

    # The pages the store hands out hold at most PAGE entries, ids ascending, keys whole.
    pages = list(store.changes.active_key_pages(PDQ, PAGE))
    assert pages and all(0 < len(ids) <= PAGE for ids, _ in pages)
    assert all(len(raw) == 32 * len(ids) for ids, raw in pages)
    flat = [i for ids, _ in pages for i in ids]
    assert flat == sorted(flat) and len(flat) == store.changes.count_active(PDQ)
    assert all(
        len(p.upserts) + len(p.removals) <= PAGE for p in store.changes.pages_since(0, page=PAGE)
    )

    paged = SignalIndexes(store, tmp_path / "paged", page=PAGE)
    paged.rebuild()
    default = SignalIndexes(store, tmp_path / "default")
    default.rebuild()
    expected = _reference(store)
    assert _contents(paged) == expected == _contents(default)
    assert len(expected[PDQ]) == 120 - 5 - 3 and paged.verify() == []

    # Same matches as an index built the old way (apply + compact from whole rows).
    old = SegmentedPdqIndex()
    old.apply(*_whole_rows(store, PDQ), checkpoint=1)
    rng = np.random.default_rng(3)
    stored = np.array([np.frombuffer(k, dtype=np.uint8) for k in expected[PDQ].values()])
    near = stored[:30].copy()
    near[:, 0] ^= rng.integers(0, 256, 30, dtype=np.uint8)  # up to 8 bits away
    queries = np.concatenate([near, rng.integers(0, 256, (20, 32), dtype=np.uint8)])
    for hits in (paged.pdq.search(queries, 31), default.pdq.search(queries, 31)):
        want = old.search(queries, 31)
        assert hits.query.tolist() == want.query.tolist() and hits.ids.tolist() == want.ids.tolist()
    assert len(set(old.search(near, 31).query.tolist())) == 30
    for kind in DIGESTS:
        table = SegmentedDigestTable(kind)
        table.apply(*_whole_rows(store, kind))
        got = paged.digests[kind].lookup(
            keys_of(kind, [r.signal for r in records[:40] if r.signal_type == kind])
        )
        want = table.lookup(
            keys_of(kind, [r.signal for r in records[:40] if r.signal_type == kind])
        )
        assert got.ids.tolist() == want.ids.tolist()


def test_catch_up_in_small_pages(store: Store, tmp_path: Path) -> None:
    store.banks.create(BankInfo(name="b"), actor="t")
    _fill(store, 2, 10)
    paged = SignalIndexes(store, tmp_path / "i", page=PAGE)  # built by the rebuild path
    records = _fill(store, 3, 50)  # a change log many pages long
    store.banks.remove_entries("b", [(r.signal_type, r.signal) for r in records[:6]], actor="t")
    assert paged.catch_up() == 94 + 6  # the 6 removed since read as removals
    assert _contents(paged) == _reference(store)
    assert paged.checkpoint == store.changes.current_seq()
    assert paged.catch_up() == 0 and paged.verify() == []
    store.banks.delete("b", actor="t")  # tombstones: removals read in pages too
    assert paged.catch_up() > 0
    assert all(not held for held in _contents(paged).values())
