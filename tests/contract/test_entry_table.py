"""The in-memory entry table against the database, on SQLite and PostgreSQL.

A seeded random walk adds, re-imports (new category, tags, source id), removes, disables,
enables, pauses and resumes entries, disables and enables banks, and deletes banks (then adds
entries elsewhere: SQLite may hand the deleted ids out again). After every step the table
caught up from the change log, and one loaded afresh, must say of every id exactly what
``get_entries`` says; and the matcher's answers must equal those of a matcher that reads its
entries from the database (the table kept away from it).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from amparo import Amparo, BankInfo, EntryRecord
from amparo.banks.model import EntryView
from amparo.config import Settings
from amparo.index.entries import EntryMeta, EntryTable
from amparo.indexing import EntryTableSync
from amparo.matching import Matcher, Query

CATEGORIES = (None, "c1", "c2", "c3")
TAGS = ((), ("a",), ("a", "b"), ("b",))
SOURCES = (None, "s1", "s2", "s3", "s4")


@pytest.fixture
def amparo(settings: Settings) -> Iterator[Amparo]:
    app = Amparo(settings)
    yield app
    app.close()


def _meta(view: EntryView) -> EntryMeta:
    return EntryMeta(
        id=view.id,
        bank_id=view.bank_id,
        enabled=view.enabled,
        removed=view.removed,
        disabled_until=view.disabled_until,
        category=view.category,
        tags=tuple(view.tags),
        source_id=view.source_id,
        variant_of=getattr(view, "variant_of", None),
        variant=getattr(view, "variant", None),
    )


def _check(table: EntryTable | None, amparo: Amparo, top_id: int, step: str) -> None:
    assert table is not None
    stored = amparo.store.banks.get_entries(range(1, top_id + 1))
    for i in range(1, top_id + 1):
        expected = _meta(stored[i]) if i in stored else None
        assert table.get(i) == expected, f"entry {i} after {step}"
    assert len(table) == len(stored)


def _answers(matcher: Matcher, signals: list[str]) -> list[list[tuple[object, ...]]]:
    results = matcher.match([Query(signals={"md5": s}) for s in signals])
    return [
        sorted((m.bank, m.entry_id, m.category, m.tags, m.source_id) for m in r.matches)
        for r in results
    ]


def _record(rng: random.Random, signal: str) -> EntryRecord:
    return EntryRecord(
        "md5",
        signal,
        category=rng.choice(CATEGORIES),
        tags=list(rng.choice(TAGS)),
        source_id=rng.choice(SOURCES),
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_entry_table_agrees_with_the_database(amparo: Amparo, seed: int) -> None:
    rng = random.Random(seed)
    banks = ["b0", "b1", "b2"]
    for name in banks:
        amparo.banks.create(BankInfo(name=name))
    signals: dict[str, list[str]] = {name: [] for name in banks}
    counter = 0

    def fresh_signals(n: int) -> list[str]:
        nonlocal counter
        out = []
        for _ in range(n):
            counter += 1
            out.append(f"{counter:032x}")
        return out

    for name in banks:
        new = fresh_signals(6)
        amparo.banks.add_entries(name, [_record(rng, s) for s in new])
        signals[name] += new
    amparo.matcher.warm()  # loads its entry table
    live = EntryTableSync(amparo.store)
    live.catch_up()
    oracle = Matcher(amparo.store, amparo.settings)
    oracle._entry_table.catch_up = lambda: 0  # type: ignore[method-assign]  # database path
    future = datetime.now(UTC) + timedelta(days=3)
    for step in range(30):
        bank = rng.choice(banks)
        mine = signals[bank]
        some = [("md5", s) for s in rng.sample(mine, min(len(mine), rng.randint(1, 3)))]
        op = rng.choice(
            ["add", "reimport", "remove", "disable", "enable", "pause", "resume", "bank", "delete"]
        )
        if op == "add":
            new = fresh_signals(rng.randint(1, 4))
            amparo.banks.add_entries(bank, [_record(rng, s) for s in new])
            mine += new
        elif op == "reimport" and mine:
            amparo.banks.add_entries(bank, [_record(rng, s) for _, s in some])
        elif op == "remove":
            amparo.banks.remove_signals(bank, some)
        elif op in ("disable", "enable"):
            amparo.banks.set_signals_enabled(bank, some, op == "enable")
        elif op in ("pause", "resume"):
            amparo.banks.set_signals_disabled_until(bank, some, future if op == "pause" else None)
        elif op == "bank":
            amparo.banks.update(bank, enabled=not amparo.banks.get(bank).enabled)
        elif op == "delete":
            amparo.banks.delete(bank)
            amparo.banks.create(BankInfo(name=bank))
            signals[bank] = fresh_signals(3)
            amparo.banks.add_entries(bank, [_record(rng, s) for s in signals[bank]])
        live.catch_up()
        top_id = counter + 10
        _check(live.table, amparo, top_id, f"step {step} ({op} {bank})")
        loaded = EntryTableSync(amparo.store)
        loaded.catch_up()
        _check(loaded.table, amparo, top_id, f"step {step} ({op} {bank}), loaded afresh")
        every = [s for name in banks for s in signals[name]] + [f"{counter + 1:032x}"]
        assert _answers(amparo.matcher, every) == _answers(oracle, every), f"step {step} ({op})"
    assert oracle._entry_table.table is None  # the oracle did read the database


def test_entry_table_is_compact() -> None:
    table = EntryTable()
    rows = [
        EntryMeta(i, 1, True, False, None, f"c{i % 5}", ("t",), None) for i in range(1, 100_001)
    ]
    table.apply(rows, checkpoint=1)
    assert len(table) == 100_000
    assert table.nbytes() <= 20 * 100_000 * 1.6  # 17 B a slot, arrays grown by half at most
    assert table.get(5) == rows[4]
    assert table.get(0) is None and table.get(100_001) is None
    table.apply(dropped=[5], checkpoint=2)
    assert table.get(5) is None and len(table) == 99_999 and table.checkpoint == 2


def test_a_service_warms_its_indexes_again_before_the_entry_table_is_used(
    amparo: Amparo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading every entry can evict the worker's index from the page cache (100M entries
    read 35 GB): the table's loader faults the indexes back in before it is ready."""
    amparo.banks.create(BankInfo(name="b"))
    amparo.banks.add_entries("b", [EntryRecord("pdq", f"{i:064x}") for i in range(1, 50)])
    matcher = amparo.matcher
    sync = matcher._entry_table
    ready_when_warmed: list[bool] = []
    real_warm = type(matcher.indexes).warm

    def warm(indexes: object) -> None:
        ready_when_warmed.append(matcher.entries_loaded)
        real_warm(indexes)  # type: ignore[arg-type]

    monkeypatch.setattr(type(matcher.indexes), "warm", warm)
    sync.table = None
    thread = sync.load_in_background(before_ready=matcher._warm_again)
    thread.join(30)
    assert ready_when_warmed[-1] is False  # warmed before the table was handed over
    assert matcher.entries_loaded and sync.table is not None and len(sync.table) == 49
