"""The store's behaviour, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import random

import pytest

from amparo.banks.model import BankInfo, EntryRecord
from amparo.errors import BankNotFoundError, ConflictError, FormatError, InputError
from amparo.store import Store


def _md5s(n: int, seed: int = 1) -> list[EntryRecord]:
    rng = random.Random(seed)
    return [EntryRecord("md5", f"{rng.getrandbits(128):032x}", category="a") for _ in range(n)]


@pytest.fixture
def store(database_url: str) -> Store:
    s = Store(database_url)
    yield s
    s.close()


def test_bank_lifecycle(store: Store) -> None:
    store.banks.create(BankInfo(name="known", source="hotline", supplier="x"), actor="t")
    with pytest.raises(ConflictError):
        store.banks.create(BankInfo(name="known"), actor="t")
    bank = store.banks.update("known", actor="t", pdq_threshold=20, enabled=False)
    assert bank.pdq_threshold == 20 and not bank.enabled and bank.source == "hotline"
    assert [b.name for b in store.banks.list()] == ["known"]
    store.banks.delete("known", actor="t")
    with pytest.raises(BankNotFoundError):
        store.banks.get("known")
    actions = [a.action for a in store.audit_log.entries()]
    assert actions == ["bank.delete", "bank.update", "bank.create"]


@pytest.mark.parametrize("name", ["", "-x", "has space", "a/b", "x" * 101])
def test_bad_bank_names_are_refused(store: Store, name: str) -> None:
    with pytest.raises(InputError):
        store.banks.create(BankInfo(name=name), actor="t")


def test_import_dedupes_and_updates_metadata(store: Store) -> None:
    store.banks.create(BankInfo(name="b"), actor="t")
    records = _md5s(500)
    counts = store.banks.add_entries("b", records + records[:10], actor="t")
    assert counts.added == 500
    again = [EntryRecord(r.signal_type, r.signal, category="z", tags=["t1"]) for r in records[:5]]
    counts = store.banks.add_entries("b", again, actor="t")
    assert (counts.added, counts.updated) == (0, 5)
    found = store.banks.find_exact("md5", [records[0].signal])
    assert found[0].category == "z" and found[0].tags == ["t1"]
    assert store.banks.get("b").entry_count == 500


def test_failed_import_leaves_bank_as_it_was(store: Store) -> None:
    store.banks.create(BankInfo(name="b"), actor="t")
    store.banks.add_entries("b", _md5s(10), actor="t")
    seq = store.changes.current_seq()

    def broken():
        yield from _md5s(1000, seed=2)
        raise FormatError("line 1001 is bad")

    with pytest.raises(FormatError):
        store.banks.add_entries("b", broken(), actor="t")
    assert store.banks.get("b").entry_count == 10
    assert store.changes.current_seq() == seq
    assert not store.banks.find_exact("md5", [_md5s(1, seed=2)[0].signal])


def test_replace_removes_others(store: Store) -> None:
    store.banks.create(BankInfo(name="b"), actor="t")
    old = _md5s(20)
    store.banks.add_entries("b", old, actor="t")
    counts = store.banks.add_entries("b", old[:5] + _md5s(3, seed=9), actor="t", replace=True)
    assert (counts.added, counts.updated, counts.removed) == (3, 5, 15)
    assert store.banks.get("b").entry_count == 8
    assert not store.banks.find_exact("md5", [old[10].signal])


def test_change_log_reports_adds_removals_and_deleted_banks(store: Store) -> None:
    store.banks.create(BankInfo(name="b"), actor="t")
    pdq = EntryRecord("pdq", "f" * 64)
    store.banks.add_entries("b", [pdq, *_md5s(2)], actor="t")
    start = store.changes.current_seq()
    changes = store.changes.since(0, ["pdq"])
    assert [u[2] for u in changes.upserts] == ["f" * 64]
    entry_id = changes.upserts[0][0]

    store.banks.set_entries_enabled("b", [("pdq", "f" * 64)], False, actor="t")
    changes = store.changes.since(start, ["pdq"])
    assert changes.removals == [(entry_id, "pdq")] and not changes.upserts

    mid = changes.seq
    store.banks.set_entries_enabled("b", [("pdq", "f" * 64)], True, actor="t")
    assert store.changes.since(mid, ["pdq"]).upserts[0][0] == entry_id

    last = store.changes.current_seq()
    store.banks.delete("b", actor="t")
    changes = store.changes.since(last, ["pdq"])
    assert changes.removals == [(entry_id, "pdq")]


def test_reimport_does_not_churn_the_change_log(store: Store) -> None:
    store.banks.create(BankInfo(name="b"), actor="t")
    records = [EntryRecord("pdq", f"{i:064x}") for i in range(50)]
    store.banks.add_entries("b", records, actor="t")
    seq = store.changes.current_seq()
    store.banks.add_entries("b", records, actor="t")
    assert store.changes.since(seq).upserts == []


def test_removed_entries_stop_matching_and_come_back(store: Store) -> None:
    store.banks.create(BankInfo(name="b"), actor="t")
    rec = _md5s(1)[0]
    store.banks.add_entries("b", [rec], actor="t")
    assert store.banks.remove_entries("b", [("md5", rec.signal)], actor="t") == 1
    assert store.banks.find_exact("md5", [rec.signal]) == []
    assert store.banks.get("b").entry_count == 0
    store.banks.add_entries("b", [rec], actor="t")
    assert len(store.banks.find_exact("md5", [rec.signal])) == 1


def test_export_iterates_every_entry(store: Store) -> None:
    store.banks.create(BankInfo(name="b"), actor="t")
    records = _md5s(120)
    store.banks.add_entries("b", records, actor="t")
    assert sorted(r.signal for r in store.banks.iter_entries("b", batch=50)) == sorted(
        r.signal for r in records
    )


@pytest.mark.slow
def test_bulk_import_of_100k(store: Store) -> None:
    store.banks.create(BankInfo(name="big"), actor="t")
    counts = store.banks.add_entries("big", _md5s(100_000), actor="t")
    assert counts.added == 100_000


def test_long_signals_such_as_vpdq_are_stored_and_deduplicated(store: Store) -> None:
    from amparo.signals.vpdq import VpdqFrame, VpdqFrames

    rng = random.Random(5)
    frames = tuple(VpdqFrame(i, 90, f"{rng.getrandbits(256):064x}", i / 10) for i in range(600))
    compact = VpdqFrames(frames).to_compact()
    assert len(compact) > 8192  # past what a PostgreSQL B-tree entry may hold
    store.banks.create(BankInfo(name="videos"), actor="t")
    assert store.banks.add_entries("videos", [EntryRecord("vpdq", compact)], actor="t").added == 1
    counts = store.banks.add_entries("videos", [EntryRecord("vpdq", compact, note="x")], actor="t")
    assert (counts.added, counts.updated) == (0, 1)
    assert [v.note for v in store.banks.find_exact("vpdq", [compact])] == ["x"]
    assert store.banks.remove_entries("videos", [("vpdq", compact)], actor="t") == 1


def test_migrations_upgrade_a_database_with_data(tmp_path) -> None:
    from alembic import command
    from sqlalchemy import text

    from amparo.store.db import _alembic_config, make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(
            text(
                "INSERT INTO banks (name, description, source, supplier, terms, enabled, "
                "dihedral, created_at, updated_at) VALUES ('old', '', '', '', '', 1, 0, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO bank_entries (bank_id, signal_type, signal, tags, enabled, "
                "added_at, seq) VALUES (1, 'md5', :s, '', 1, '2026-01-01 00:00:00', 1)"
            ),
            {"s": "0" * 32},
        )
    engine.dispose()
    store = Store(url)  # migrates to the newest revision
    assert [e.bank_name for e in store.banks.find_exact("md5", ["0" * 32])] == ["old"]
    store.close()


def test_bank_delete_after_delete_and_re_add(store: Store) -> None:
    """Issue #12 point 9: on SQLite the ids of deleted entries came back for the re-added
    ones, and the second delete failed on ``entry_tombstones``; ids are never reused."""
    records = _md5s(5)
    store.banks.create(BankInfo(name="b"), actor="t")
    store.banks.add_entries("b", records, actor="t")
    first = {e.id for e in store.banks.find_exact("md5", [r.signal for r in records])}
    store.banks.delete("b", actor="t")
    store.banks.create(BankInfo(name="b"), actor="t")
    store.banks.add_entries("b", records, actor="t")
    second = {e.id for e in store.banks.find_exact("md5", [r.signal for r in records])}
    assert len(second) == 5 and not first & second
    store.banks.delete("b", actor="t")
    with pytest.raises(BankNotFoundError):
        store.banks.get("b")
