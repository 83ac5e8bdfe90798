"""Match volume: the additive upsert on SQLite and PostgreSQL, the in-memory tally's flushes
(after the interval, on close, from two processes on one database), retention, and the
privacy guardrail (counts only)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect

from amparo import Amparo, BankInfo, load_settings
from amparo.banks.model import EntryRecord
from amparo.config import Settings
from amparo.matching import Match
from amparo.store import Store
from amparo.store.match_volume import MatchVolumeRepository
from amparo.tally import MatchTally
from clocks import ManualClock, ManualMonotonic

DAY = date(2026, 12, 5)
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    s.banks.create(BankInfo(name="known"), actor="t")
    s.banks.create(BankInfo(name="other"), actor="t")
    yield s
    s.close()


def hit(bank: str = "known", entry: int = 1) -> list[Match]:
    return [Match(bank, entry, "md5", 0)]


def test_counts_add_up_instead_of_overwriting(store: Store) -> None:
    repo = MatchVolumeRepository(store.db)
    assert repo.add({(DAY, "known", "api"): 2, (DAY, "other", "scan"): 1}) == 3
    assert repo.add({(DAY, "known", "api"): 5, (DAY - timedelta(days=1), "known", "api"): 1}) == 6
    # A bank deleted since the counts were gathered: its counts are dropped, the rest kept.
    assert repo.add({(DAY, "gone", "api"): 4, (DAY, "known", "cli"): 1}) == 1
    assert repo.since(DAY - timedelta(days=1)) == [
        (DAY - timedelta(days=1), "known", "api", 1),
        (DAY, "known", "api", 7),
        (DAY, "known", "cli", 1),
        (DAY, "other", "scan", 1),
    ]
    assert repo.since(DAY) == [r for r in repo.since(DAY - timedelta(days=9)) if r[0] == DAY]
    assert repo.purge(DAY) == 1
    assert repo.total() == 9
    store.banks.delete("other", actor="t")  # its counts go with it
    assert repo.total() == 8


def test_the_table_holds_counts_only(store: Store) -> None:
    """Privacy guardrail: a day, a bank, a source kind and a number; no hash, path, URL or
    anything else of the content matched."""
    columns = {c["name"] for c in inspect(store.engine).get_columns("match_volume")}
    assert columns == {"day", "bank_id", "source", "matches"}
    indexes = {i["name"] for i in inspect(store.engine).get_indexes("bank_entries")}
    assert "ix_entry_source_id" in indexes


def test_the_tally_flushes_after_the_interval_and_on_close(store: Store) -> None:
    repo = MatchVolumeRepository(store.db)
    clock, ticks = ManualClock(datetime(2026, 12, 5, 23, 59, tzinfo=UTC)), ManualMonotonic()
    tally = MatchTally(repo, interval=30, clock=clock, monotonic=ticks)
    # One per lookup per bank: two entries of one bank matched by one lookup count once.
    tally.add([hit() + hit(entry=2), [], hit("other")], "api")
    tally.add([hit()], "scan")
    assert repo.total() == 0  # nothing written on a lookup
    assert tally.pending() == {(DAY, "known", "api"): 1, (DAY, "other", "api"): 1,
                               (DAY, "known", "scan"): 1}  # fmt: skip
    ticks.advance(29)
    tally.add([hit()], "api")
    tally.wait()
    assert repo.total() == 0
    ticks.advance(1)
    clock.advance(120)  # past midnight: the next match counts on the new day
    tally.add([hit()], "api")  # due: flushed on a thread of its own
    tally.wait()
    assert repo.total() == 5 and tally.pending() == {}
    assert (DAY + timedelta(days=1), "known", "api", 1) in repo.since(DAY)
    tally.add([hit(), hit()], "cli")
    assert repo.total() == 5
    tally.close()
    assert repo.total() == 7
    assert (DAY + timedelta(days=1), "known", "cli", 2) in repo.since(DAY)


class Unreachable(MatchVolumeRepository):
    """A database that refuses the write (as one that is down would)."""

    def add(self, counts: object) -> int:  # type: ignore[override]
        raise OSError("database unreachable")


def test_a_failed_flush_keeps_its_counts(store: Store) -> None:
    repo = MatchVolumeRepository(store.db)
    ticks = ManualMonotonic()
    tally = MatchTally(Unreachable(store.db), interval=30, clock=ManualClock(), monotonic=ticks)
    tally.add([hit()], "api")
    with pytest.raises(OSError):
        tally.flush()
    ticks.advance(30)
    tally.add([hit()], "api")  # the background flush fails too: logged, kept
    tally.wait()
    tally.close()  # closing never fails
    assert sum(tally.pending().values()) == 2
    tally.repository = repo
    assert tally.flush() == 2 and repo.total() == 2


def test_old_days_are_deleted_when_counts_are_stored(store: Store) -> None:
    repo = MatchVolumeRepository(store.db)
    repo.add(
        {
            (DAY - timedelta(days=401), "known", "api"): 3,
            (DAY - timedelta(days=5), "known", "api"): 2,
        }
    )
    clock = ManualClock(datetime(2026, 12, 5, 12, tzinfo=UTC))
    tally = MatchTally(repo, keep_days=400, clock=clock, monotonic=ManualMonotonic())
    tally.add([hit()], "api")
    tally.flush()
    assert repo.since(DAY - timedelta(days=500)) == [
        (DAY - timedelta(days=5), "known", "api", 2),
        (DAY, "known", "api", 1),
    ]


def test_two_installations_on_one_database_add_up(tmp_path: Path, database_url: str) -> None:
    """Two processes (two Amparo instances) each count their own lookups; closing stores
    them, and the additive upsert adds them up."""

    def settings(name: str) -> Settings:
        return load_settings(
            env={}, overrides={"home": tmp_path / name, "database_url": database_url}
        )

    with Amparo(settings("one")) as first:
        first.banks.create(BankInfo(name="known"))
        first.banks.add_entries("known", [EntryRecord("md5", MD5)])
    one, two = Amparo(settings("one")), Amparo(settings("two"))
    try:
        for amparo, n in ((one, 2), (two, 3)):
            for _ in range(n):
                assert amparo.checks.match_signals([("md5", MD5), ("md5", "0" * 32)])[0]
        assert one.tally.repository.total() == 0  # nothing stored per lookup
    finally:
        one.close()
        two.close()
    with Amparo(settings("one")) as amparo:
        assert amparo.tally.repository.total() == 5
        assert [(b, s, n) for _, b, s, n in amparo.tally.repository.since(date(2000, 1, 1))] == [
            ("known", "lookup", 5)
        ]
