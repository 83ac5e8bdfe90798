"""The hash-chained audit log, the same on SQLite and PostgreSQL: appends chain, and editing,
removing, reordering or truncating entries in the database is caught by verification."""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, event, select, text, update

from amparo.banks.model import BankInfo
from amparo.store import Store
from amparo.store import audit as chain
from amparo.store.models import AuditRow
from amparo.store.models_reports import AuditCheckpointRow

_log = AuditRow.__table__
_cp = AuditCheckpointRow.__table__


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    yield s
    s.close()


@pytest.fixture
def signer(tmp_path: Path) -> chain.AuditSigner:
    return chain.AuditSigner(tmp_path / "keys" / "audit.key")


def _fill(store: Store, n: int = 6) -> list[int]:
    for i in range(n):
        store.audit_log.append(
            f"test.event{i}", f"thing:{i}", {"i": i, "note": "ünïcode"}, actor="alice"
        )
    with store.engine.connect() as conn:
        return [int(r.id) for r in conn.execute(select(_log.c.id).order_by(_log.c.seq))]


def _verify(store: Store, signer: chain.AuditSigner | None = None) -> chain.VerifyReport:
    return chain.verify_store(store.engine, signer.public_key if signer else None)


def _kinds(report: chain.VerifyReport) -> list[tuple[str, int | None]]:
    return [(p.kind, p.entry_id) for p in report.problems]


def test_appends_form_an_intact_chain(store: Store) -> None:
    store.banks.create(BankInfo(name="b"), actor="t")  # audited inside the bank transaction
    ids = _fill(store, 4)
    entries = list(chain.iter_entries(store.engine))
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == chain.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    report = _verify(store)
    assert report.ok and report.entries == 5 and report.head_hash == entries[-1].hash
    newest = store.audit_log.entries(2)
    assert [e.id for e in newest] == ids[::-1][:2] and newest[0].hash == entries[-1].hash


def test_a_rolled_back_transaction_leaves_no_gap(store: Store) -> None:
    _fill(store, 2)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.audit("t", "doomed", "", {})
        raise RuntimeError
    _fill(store, 1)
    assert _verify(store).ok
    assert [e.seq for e in chain.iter_entries(store.engine)] == [1, 2, 3]


def test_edited_entry_is_caught(store: Store) -> None:
    ids = _fill(store)
    with store.engine.begin() as conn:
        conn.execute(update(_log).where(_log.c.id == ids[2]).values(details='{"i": 99}'))
    assert _kinds(_verify(store)) == [("edited", ids[2])]


def test_edited_actor_or_time_is_caught(store: Store) -> None:
    ids = _fill(store)
    with store.engine.begin() as conn:
        conn.execute(update(_log).where(_log.c.id == ids[1]).values(actor="mallory"))
        row = conn.execute(select(_log.c.at).where(_log.c.id == ids[4])).scalar_one()
        conn.execute(update(_log).where(_log.c.id == ids[4]).values(at=row.replace(microsecond=1)))
    assert _kinds(_verify(store)) == [("edited", ids[1]), ("edited", ids[4])]


def test_removed_entry_is_caught(store: Store) -> None:
    ids = _fill(store)
    with store.engine.begin() as conn:
        conn.execute(delete(_log).where(_log.c.id == ids[3]))
    report = _verify(store)
    assert _kinds(report) == [("removed", ids[4])]
    assert "after entry" in report.problems[0].message and report.problems[0].seq == 4


def test_reordered_entries_are_caught(store: Store) -> None:
    ids = _fill(store)
    # Swap the positions of entries 2 and 5 (through a free value: seq is unique).
    with store.engine.begin() as conn:
        conn.execute(update(_log).where(_log.c.id == ids[1]).values(seq=-1))
        conn.execute(update(_log).where(_log.c.id == ids[4]).values(seq=2))
        conn.execute(update(_log).where(_log.c.id == ids[1]).values(seq=5))
    report = _verify(store)
    assert ("reordered", ids[4]) in _kinds(report) and ("reordered", ids[1]) in _kinds(report)
    assert {p.kind for p in report.problems} == {"reordered"}


def test_rewritten_tail_and_truncation_are_caught_by_checkpoints(
    store: Store, signer: chain.AuditSigner
) -> None:
    ids = _fill(store, 5)
    cp = chain.checkpoint(store.engine, signer)
    assert cp is not None and cp.seq == 5
    assert _verify(store, signer).ok
    # An attacker who edits entry 3 and recomputes every hash after it fools the links...
    entries = list(chain.iter_entries(store.engine))
    with store.engine.begin() as conn:
        prev = entries[1].hash
        for e in entries[2:]:
            details = '{"i": 42}' if e.seq == 3 else e.details
            digest = chain.entry_hash(e.seq, e.at, e.actor, e.action, e.target, details, prev)
            conn.execute(
                update(_log)
                .where(_log.c.id == e.id)
                .values(details=details, prev_hash=prev, hash=digest)
            )
            prev = digest
    # ...but not the signed checkpoint.
    assert _kinds(_verify(store, signer)) == [("edited", ids[4])]
    # Dropping entries from the end (and winding the counter back) is truncation.
    with store.engine.begin() as conn:
        conn.execute(delete(_log).where(_log.c.seq >= 4))
        conn.execute(text("UPDATE counters SET value = 3 WHERE name = 'audit_seq'"))
    assert [p.kind for p in _verify(store, signer).problems] == ["truncated"]


def test_entries_removed_from_the_end_are_caught_by_the_counter(store: Store) -> None:
    _fill(store, 4)
    with store.engine.begin() as conn:
        conn.execute(delete(_log).where(_log.c.seq == 4))
    assert [p.kind for p in _verify(store).problems] == ["truncated"]


def test_forged_checkpoint_is_caught(store: Store, signer: chain.AuditSigner, tmp_path: Path):
    _fill(store, 3)
    chain.checkpoint(store.engine, signer)
    other = chain.AuditSigner(tmp_path / "other.key")
    assert [p.kind for p in _verify(store, other).problems] == ["bad_signature"]
    with store.engine.begin() as conn:
        conn.execute(update(_cp).values(hash="f" * 64))
    assert "bad_signature" in [p.kind for p in _verify(store, signer).problems]


def test_checkpoints_are_signed_every_n_entries(store: Store, signer: chain.AuditSigner) -> None:
    chain.configure(store.engine, signer, 3)
    _fill(store, 7)
    assert [c.seq for c in chain.list_checkpoints(store.engine)] == [3, 6]
    assert _verify(store, signer).ok


def test_export_verifies_offline_and_tampering_in_it_is_caught(
    store: Store, signer: chain.AuditSigner
) -> None:
    _fill(store, 4)
    chain.checkpoint(store.engine, signer)
    lines = list(chain.export_lines(store.engine, signer.public_key))
    kinds = [json.loads(line)["kind"] for line in lines]
    assert kinds == ["header"] + ["entry"] * 4 + ["checkpoint", "public_key"]
    report = chain.verify_export(lines)
    assert report.ok and report.checkpoints == 1
    doctored = []
    for line in lines:
        data = json.loads(line)
        if data["kind"] == "entry" and data["seq"] == 2:
            data["actor"] = "mallory"
        doctored.append(json.dumps(data))
    assert [p.kind for p in chain.verify_export(doctored).problems] == ["edited"]
    dropped = [line for line in lines if '"seq": 3,' not in line or '"kind": "entry"' not in line]
    assert "removed" in [p.kind for p in chain.verify_export(dropped).problems]


def test_migration_chains_existing_entries(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from amparo.store.db import _alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
        for i in range(3):
            conn.execute(
                text(
                    "INSERT INTO audit_log (at, actor, action, target, details) "
                    "VALUES (:at, 'old', 'bank.create', :t, '{}')"
                ),
                {"at": f"2025-01-0{i + 1} 10:00:00.000000", "t": f"b{i}"},
            )
    engine.dispose()
    store = Store(url)
    try:
        assert [e.seq for e in chain.iter_entries(store.engine)] == [1, 2, 3]
        store.audit_log.append("after.upgrade", "x", actor="t")
        report = _verify(store)
        assert report.ok and report.entries == 4
    finally:
        store.close()


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_the_head_is_signed_on_a_time_basis_and_the_tail_is_pinned(
    store: Store, signer: chain.AuditSigner
) -> None:
    """Issue #12 point 8: with no count-based checkpoint yet, a rewritten or truncated tail
    verified as "intact". The head is signed at most every N seconds when something was
    written, and verify says how many entries no signature covers yet."""
    clock = _Clock()
    chain.configure(store.engine, signer, 1000, 60, clock)
    _fill(store, 1)  # the first write of a process signs at once
    assert [c.seq for c in chain.list_checkpoints(store.engine)] == [1]
    ids = _fill(store, 2)
    assert [c.seq for c in chain.list_checkpoints(store.engine)] == [1]  # within the minute
    report = _verify(store, signer)
    assert report.ok and report.unsigned == 2 and "not yet covered" in report.summary()
    assert "intact" not in report.summary()
    clock.now += timedelta(seconds=61)
    ids = _fill(store, 1)
    assert [c.seq for c in chain.list_checkpoints(store.engine)] == [1, 4]
    report = _verify(store, signer)
    assert report.ok and report.unsigned == 0 and report.summary().startswith("intact")
    # Rewriting the tail with recomputed hashes is caught by the time-based signature...
    entries = list(chain.iter_entries(store.engine))
    with store.engine.begin() as conn:
        prev = entries[1].hash
        for e in entries[2:]:
            details = '{"i": 42}' if e.seq == 3 else e.details
            digest = chain.entry_hash(e.seq, e.at, e.actor, e.action, e.target, details, prev)
            conn.execute(
                update(_log)
                .where(_log.c.id == e.id)
                .values(details=details, prev_hash=prev, hash=digest)
            )
            prev = digest
    assert _kinds(_verify(store, signer)) == [("edited", ids[3])]
    # ... and so is dropping the last entry and winding the counter back.
    with store.engine.begin() as conn:
        conn.execute(delete(_log).where(_log.c.seq == 4))
        conn.execute(text("UPDATE counters SET value = 3 WHERE name = 'audit_seq'"))
    assert "truncated" in [p.kind for p in _verify(store, signer).problems]


def test_what_a_process_wrote_is_signed_when_it_closes(
    database_url: str, signer: chain.AuditSigner
) -> None:
    clock = _Clock()
    store = Store(database_url)
    chain.configure(store.engine, signer, 1000, 60, clock)
    _fill(store, 3)
    assert _verify(store, signer).unsigned == 2
    store.close()  # the end of a CLI command, or serve's shutdown
    again = Store(database_url)
    try:
        report = _verify(again, signer)
        assert report.ok and report.unsigned == 0 and report.signed_seq == 3
    finally:
        again.close()


def test_an_idle_writer_signs_its_tail_within_the_interval(
    store: Store, signer: chain.AuditSigner
) -> None:
    """A server that wrote and then went idle signs the head once the interval has passed,
    not only at shutdown."""
    chain.configure(store.engine, signer, 1000, 0.2)
    _fill(store, 3)  # the first is signed at once; a timer signs the other two
    deadline = time.monotonic() + 10
    while _verify(store, signer).unsigned and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _verify(store, signer).unsigned == 0


def test_a_busy_database_delays_the_background_signature_quietly(
    tmp_path: Path, signer: chain.AuditSigner, caplog: pytest.LogCaptureFixture
) -> None:
    """An import's part holds SQLite's write lock for a minute: the idle signer finds the
    database busy, says nothing above debug level, and signs once the lock is gone."""
    path = tmp_path / "a.db"
    store = Store(f"sqlite:///{path}")

    def short_wait(dbapi: sqlite3.Connection, _record: object) -> None:
        dbapi.execute("PRAGMA busy_timeout = 100")  # Amparo waits 30 s; the test need not

    event.listen(store.engine, "connect", short_wait)
    store.engine.dispose()
    try:
        chain.configure(store.engine, signer, 1000, 0.2)
        _fill(store, 3)  # the first is signed at once; a timer signs the other two
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as an import's part holds it
        with caplog.at_level("DEBUG", logger="amparo.store.audit.chain"):
            time.sleep(0.8)  # the timer fired (and was refused) at least once
            holder.execute("ROLLBACK")
            holder.close()
            deadline = time.monotonic() + 10
            while _verify(store, signer).unsigned and time.monotonic() < deadline:
                time.sleep(0.05)
        assert _verify(store, signer).unsigned == 0
        busy = [r for r in caplog.records if "database busy" in r.getMessage()]
        assert busy and all(r.levelname == "DEBUG" for r in busy)
        assert not [r for r in caplog.records if r.levelno >= 30]
    finally:
        store.close()
