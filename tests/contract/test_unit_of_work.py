"""The unit of work (``amparo.store.uow``): several repositories' writes and their audit
entries commit together or not at all, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from amparo.banks.model import BankInfo, EntryRecord
from amparo.store import Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    yield s
    s.close()


def _actions(store: Store) -> list[str]:
    return [e.action for e in reversed(store.audit_log.entries(100))]


def test_writes_inside_a_transaction_join_it_and_roll_back_together(store: Store) -> None:
    committed: list[str] = []
    with pytest.raises(RuntimeError), store.transaction() as tx:
        store.banks.create(BankInfo(name="a"), actor="t")  # its own transaction: joins
        store.banks.add_entries("a", [EntryRecord("md5", "0" * 32)], actor="t")
        # Reads inside see the transaction's own writes (the same connection).
        assert [b.name for b in store.banks.list()] == ["a"]
        tx.audit("t", "test.step", "a")
        tx.after_commit(lambda: committed.append("a"))
        raise RuntimeError("a later step fails")
    assert store.banks.list() == []
    assert _actions(store) == []  # no audit entry outlives its change
    assert committed == []  # after_commit never runs on rollback
    assert store.changes.current_seq() == 0  # the change log did not move either


def test_a_committed_unit_is_one_commit_and_moves_the_generation_once(store: Store) -> None:
    before = store.generation
    done: list[int] = []
    with store.transaction() as tx:
        store.banks.create(BankInfo(name="a"), actor="t")
        store.banks.create(BankInfo(name="b"), actor="t")
        tx.after_commit(lambda: done.append(store.generation))
    assert [b.name for b in store.banks.list()] == ["a", "b"]
    assert _actions(store) == ["bank.create", "bank.create"]
    assert store.generation == before + 1 and done == [before + 1]


def test_a_transaction_that_only_touches_cases_does_not_refresh_matching(store: Store) -> None:
    before = store.generation
    with store.transaction(refresh=False) as tx:
        tx.audit("t", "case.opened", "case:1")
    assert store.generation == before
    with store.transaction(refresh=False), store.transaction():  # a joined write that does
        pass
    assert store.generation == before + 1


def test_a_value_the_database_refuses_is_bad_input_not_a_crash(store: Store) -> None:
    """A NUL character (PostgreSQL refuses it in text) in a name from a URL path or a body is
    a clear InputError (400), never a 500; SQLite simply finds nothing."""
    from amparo.errors import AmparoError, InputError

    with pytest.raises(AmparoError) as refused:
        store.banks.get("a\x00b")
    if store.db.engine.dialect.name == "postgresql":
        assert isinstance(refused.value, InputError) and refused.value.hint
        assert "NUL" in refused.value.hint
        with pytest.raises(InputError):
            store.banks.create(BankInfo(name="x", description="a\x00b"), actor="t")
