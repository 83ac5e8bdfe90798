"""Adding many entries to a bank: the staging table, merged in one transaction or in parts.

A list is first read whole into a temporary staging table (:mod:`amparo.store.staging`), so a
bad row changes nothing. It is then merged into ``bank_entries`` in one transaction, or, past
``commit_rows`` staged rows, in parts of about that many in signal order, each its own
transaction: no transaction then holds the whole list (100 million entries in one would need
a transaction log, SQLite's WAL, as big as the database itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, update

from amparo.banks.model import BankInfo, EntryRecord
from amparo.clock import utc_now
from amparo.store.changelog import ChangeLog
from amparo.store.models import BankRow
from amparo.store.staging import WHOLE, Slice, Staging
from amparo.store.uow import Database, UnitOfWork
from amparo.store.variants import follow_entries, put_variants

_bank = cast(Table, BankRow.__table__)


@dataclass
class ImportCounts:
    added: int = 0
    updated: int = 0
    removed: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    variants: int = 0
    """Variants added (``variants`` of :meth:`BankRepository.add_entries`)."""

    def add(self, other: ImportCounts) -> None:
        self.added += other.added
        self.updated += other.updated
        self.removed += other.removed
        self.variants += other.variants


@dataclass
class Job:
    """What one :func:`add_entries` call merges, part after part."""

    bank: BankInfo
    actor: str
    action: str
    details: dict[str, Any]
    replace: bool
    variants: Mapping[tuple[str, str], Sequence[tuple[str, str]]]


def add_entries(
    db: Database,
    changes: ChangeLog,
    job: Job,
    records: Iterable[EntryRecord],
    commit_rows: int = 0,
) -> ImportCounts:
    """Add (or update) ``records`` in the job's bank; ``replace`` removes its other entries.
    If ``records`` raises part way, nothing is changed. ``variants``: for an entry's ``(type,
    signal)``, its variants' ``(name, signal)``, which replace those it had
    (:mod:`amparo.store.variants`); variants of other entries follow their entry.

    Rows are bulk-loaded into a temporary staging table (COPY on PostgreSQL), then merged with
    one sorted ``INSERT ... SELECT ... ON CONFLICT``: a million entries take seconds.

    ``commit_rows`` (outside an open unit of work, without variants): a list of more rows than
    this is merged in parts of about that many rows, in signal order, each part its own
    transaction, change-log position and audit entry (``part`` and ``parts`` in its details;
    the removals of ``replace`` go with the last). A failure between parts keeps the parts
    committed; importing the list again finishes it (unchanged entries are not touched)."""
    if commit_rows <= 0 or job.variants or db.current() is not None:
        with db.transaction() as tx:
            staging = Staging(tx.conn)
            try:
                staging.load(records)
                return _merge(tx, changes, staging, job, WHOLE, last=True)
            finally:
                staging.drop()
    counts = ImportCounts()
    with db.held() as conn:
        try:
            with conn.begin():  # the staging table only: nothing of the bank changes yet
                staging = Staging(conn)
                staging.load(records)
                parts = staging.slices(commit_rows)
            for number, part in enumerate(parts, 1):
                if len(parts) > 1:
                    job.details.update(part=number, parts=len(parts))
                with db.transaction_on(conn) as tx:
                    last = number == len(parts)
                    counts.add(_merge(tx, changes, staging, job, part, last=last))
        finally:
            # Closed, not pooled: its temporary file (the staged list, 17 GB at 100 million
            # rows on SQLite) goes with it, and no DROP TABLE journals and zeroes every page
            # of it first (SQLite's secure delete; Debian builds it in).
            conn.invalidate()
    return counts


def _merge(
    tx: UnitOfWork, changes: ChangeLog, staging: Staging, job: Job, part: Slice, *, last: bool
) -> ImportCounts:
    """Merge ``part`` of the staged rows into the job's bank at a change-log position of its
    own; ``last``: also remove what a ``replace`` leaves out. One audit entry."""
    bank_id = job.bank.id
    assert bank_id is not None
    counts = ImportCounts()
    now = utc_now()
    seq = changes.next_seq(tx.conn)
    existing = staging.count_existing(bank_id, part)
    counts.added = staging.merge(bank_id, now, seq, part) - existing
    counts.updated = existing
    if job.replace and last:
        counts.removed = staging.remove_others(bank_id, now, seq)
    for (stype, value), wanted in job.variants.items():
        counts.variants += put_variants(tx.conn, bank_id, stype, value, wanted, now, seq)
    follow_entries(tx.conn, bank_id, seq)
    tx.conn.execute(
        update(_bank).where(_bank.c.id == bank_id).values(updated_at=now, imported_at=now)
    )
    audit: dict[str, Any] = {
        "added": counts.added,
        "updated": counts.updated,
        "removed": counts.removed,
    }
    if job.variants:
        audit["variants"] = counts.variants
    audit.update(job.details)
    tx.audit(job.actor, job.action, job.bank.name, audit)
    return counts
