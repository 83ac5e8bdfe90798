"""Imports merged in parts (``commit_rows``): the same bank as one transaction, a commit a part.

Issue #19: a list of 100 million hashes in one transaction needs a write-ahead log as big as
the database; past ``import_commit_rows`` the list is staged whole, then merged in parts of
that many rows in signal order. Same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from amparo.banks.model import BankInfo, EntryRecord
from amparo.errors import FormatError
from amparo.store import Store


def _md5s(n: int, seed: int = 1, category: str = "a") -> list[EntryRecord]:
    rng = random.Random(seed)
    return [EntryRecord("md5", f"{rng.getrandbits(128):032x}", category=category) for _ in range(n)]


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    s.banks.create(BankInfo(name="b"), actor="t")
    s.banks.create(BankInfo(name="one"), actor="t")
    yield s
    s.close()


def _entries(store: Store, bank: str) -> dict[tuple[str, str], str | None]:
    return {(e.signal_type, e.signal): e.category for e in store.banks.iter_entries(bank)}


def _imports(store: Store, bank: str) -> list[dict[str, object]]:
    return [
        a.details
        for a in reversed(store.audit_log.entries(limit=1000))
        if a.action == "bank.add" and a.target == bank
    ]


def test_parts_give_the_bank_one_transaction_gives(store: Store) -> None:
    records = _md5s(1000)
    mixed = [EntryRecord("pdq", f"{i:064x}") for i in range(1, 60)] + records
    mixed += [EntryRecord(r.signal_type, r.signal, category="later") for r in records[:7]]
    seq = store.changes.current_seq()
    parts = store.banks.add_entries("b", mixed, actor="t", commit_rows=100)
    whole = store.banks.add_entries("one", mixed, actor="t")
    assert (parts.added, parts.updated, parts.removed) == (1059, 0, 0)
    assert (whole.added, whole.updated) == (1059, 0)
    assert _entries(store, "b") == _entries(store, "one")
    # The last of a signal's duplicates wins, even with parts.
    assert _entries(store, "b")[("md5", records[3].signal)] == "later"
    audits = _imports(store, "b")
    assert len(audits) == 11  # 1066 staged rows in parts of about 100
    assert [a["part"] for a in audits] == list(range(1, 12))
    assert {a["parts"] for a in audits} == {11}
    assert sum(int(str(a["added"])) for a in audits) == 1059
    # Each part its own change-log position; the whole import one more.
    assert store.changes.current_seq() == seq + 12
    assert store.banks.get("b").entry_count == 1059


def test_parts_count_updates_and_replace_removes_once(store: Store) -> None:
    old = _md5s(300, seed=2)
    store.banks.add_entries("b", old, actor="t")
    kept = [EntryRecord(r.signal_type, r.signal, category="z") for r in old[:100]]
    new = _md5s(250, seed=3)
    counts = store.banks.add_entries("b", kept + new, actor="t", replace=True, commit_rows=64)
    assert (counts.added, counts.updated, counts.removed) == (250, 100, 200)
    assert store.banks.get("b").entry_count == 350
    audits = _imports(store, "b")[1:]
    assert [a["removed"] for a in audits][-1] == 200
    assert all(a["removed"] == 0 for a in audits[:-1])
    assert store.banks.find_exact("md5", [old[0].signal])[0].category == "z"
    assert not store.banks.find_exact("md5", [old[150].signal])


def test_a_bad_row_with_parts_changes_nothing(store: Store) -> None:
    store.banks.add_entries("b", _md5s(10), actor="t")
    seq = store.changes.current_seq()

    def broken() -> Iterator[EntryRecord]:
        yield from _md5s(1000, seed=4)
        raise FormatError("line 1001 is bad")

    with pytest.raises(FormatError):
        store.banks.add_entries("b", broken(), actor="t", commit_rows=100)
    assert store.banks.get("b").entry_count == 10
    assert store.changes.current_seq() == seq
    # The connection went back to the pool without its staging table or an open transaction.
    counts = store.banks.add_entries("b", _md5s(5, seed=5), actor="t", commit_rows=100)
    assert counts.added == 5


def test_a_list_no_longer_than_a_part_is_one_commit(store: Store) -> None:
    seq = store.changes.current_seq()
    counts = store.banks.add_entries("b", _md5s(100), actor="t", commit_rows=100)
    assert counts.added == 100
    assert store.changes.current_seq() == seq + 1
    assert "part" not in _imports(store, "b")[0]


def test_a_part_that_fails_keeps_the_parts_before_it_and_a_rerun_finishes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import amparo.store.bank_import as bank_import

    records = _md5s(500, seed=6)
    real = bank_import._merge
    calls = {"n": 0}

    def failing(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise FormatError("disk full (simulated)")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bank_import, "_merge", failing)
    with pytest.raises(FormatError):
        store.banks.add_entries("b", records, actor="t", commit_rows=100)
    partial = store.banks.get("b").entry_count
    assert 150 <= partial <= 250  # two parts of about 100 committed
    monkeypatch.setattr(bank_import, "_merge", real)
    counts = store.banks.add_entries("b", records, actor="t", commit_rows=100)
    assert (counts.added, counts.updated) == (500 - partial, partial)
    assert store.banks.get("b").entry_count == 500
