"""Banks and their entries: the repository that creates, changes and reads them.

Writes that belong together happen in one unit of work: an import that fails half way leaves
the bank exactly as it was. Every change that affects matching takes a change-log position
(:mod:`amparo.store.changelog`) so indexes can catch up.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Table,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError

from amparo.banks.model import BankInfo, EntryRecord, EntryView
from amparo.clock import utc_now
from amparo.config import MAX_PDQ_THRESHOLD
from amparo.errors import BankNotFoundError, ConflictError, InputError
from amparo.names import validate_name
from amparo.store.bank_import import ImportCounts, Job, add_entries
from amparo.store.changelog import ChangeLog
from amparo.store.entry_rows import (
    ENTRIES_BY_IDS,
    ENTRY_BY_ID,
    ENTRY_WITH_BANK,
    NOT_VARIANT,
    entry_view,
    json_object,
    tags_of,
)
from amparo.store.models import BankRow, EntryRow, EntryTombstoneRow, signal_key
from amparo.store.models_review import BANK_KINDS
from amparo.store.uow import Database
from amparo.store.variants import follow_entries

_BANK_FIELDS = (
    "description",
    "source",
    "supplier",
    "terms",
    "enabled",
    "pdq_threshold",
    "dihedral",
    "kind",
)
_bank = cast(Table, BankRow.__table__)
_entry = cast(Table, EntryRow.__table__)
_tomb = cast(Table, EntryTombstoneRow.__table__)


def validate_bank_name(name: str) -> str:
    """A bank's name follows the one rule for names (:mod:`amparo.names`)."""
    return validate_name(name, "bank")


class BankRepository:
    """Banks and their entries in one database; reads and writes join an open unit of work."""

    def __init__(self, db: Database, changes: ChangeLog) -> None:
        self.db = db
        self.changes = changes

    # -- banks ------------------------------------------------------------------------------

    def create(self, info: BankInfo, *, actor: str) -> BankInfo:
        validate_bank_name(info.name)
        _check_threshold(info.pdq_threshold)
        _check_kind(info.kind)
        now = utc_now()
        try:
            with self.db.transaction() as tx:
                tx.conn.execute(
                    insert(_bank).values(
                        name=info.name, created_at=now, updated_at=now, **_bank_fields(info)
                    )
                )
                tx.audit(actor, "bank.create", info.name, _bank_fields(info))
        except IntegrityError:
            raise ConflictError(
                f"bank {info.name!r} already exists", hint="choose another name or import into it"
            ) from None
        return self.get(info.name)

    def get(self, name: str) -> BankInfo:
        with self.db.reading() as conn:
            row = conn.execute(select(_bank).where(_bank.c.name == name)).first()
            if row is None:
                raise BankNotFoundError(
                    f"no bank named {name!r}", hint="see `amparo bank list` for the banks there are"
                )
            count = conn.execute(
                select(func.count())
                .select_from(_entry)
                .where(_entry.c.bank_id == row.id, _entry.c.removed_at.is_(None), NOT_VARIANT)
            ).scalar_one()
        return _bank_info(row, int(count))

    def list(self, *, with_counts: bool = True) -> builtins.list[BankInfo]:
        """All banks by name; ``with_counts=False`` skips counting entries (cheap)."""
        with self.db.reading() as conn:
            counts: dict[int, int] = {}
            if with_counts:
                counts = dict(
                    conn.execute(
                        select(_entry.c.bank_id, func.count())
                        .where(_entry.c.removed_at.is_(None), NOT_VARIANT)
                        .group_by(_entry.c.bank_id)
                    ).all()
                )
            rows = conn.execute(select(_bank).order_by(_bank.c.name)).all()
        return [_bank_info(r, int(counts.get(r.id, 0))) for r in rows]

    def update(self, name: str, *, actor: str, **changes: Any) -> BankInfo:
        unknown = set(changes) - set(_BANK_FIELDS)
        if unknown:
            raise InputError(f"cannot change {', '.join(sorted(unknown))} of a bank")
        _check_threshold(changes.get("pdq_threshold"))
        if "kind" in changes:
            _check_kind(changes["kind"])
        bank = self.get(name)
        with self.db.transaction() as tx:
            tx.conn.execute(
                update(_bank).where(_bank.c.id == bank.id).values(updated_at=utc_now(), **changes)
            )
            tx.audit(actor, "bank.update", name, changes)
        return self.get(name)

    def delete(self, name: str, *, actor: str) -> None:
        bank = self.get(name)
        with self.db.transaction() as tx:
            seq = self.changes.next_seq(tx.conn)
            tx.conn.execute(
                insert(_tomb).from_select(
                    ["entry_id", "signal_type", "seq"],
                    select(_entry.c.id, _entry.c.signal_type, literal(seq, BigInteger)).where(
                        _entry.c.bank_id == bank.id
                    ),
                )
            )
            tx.conn.execute(delete(_entry).where(_entry.c.bank_id == bank.id))
            tx.conn.execute(delete(_bank).where(_bank.c.id == bank.id))
            tx.audit(actor, "bank.delete", name, {"entries": bank.entry_count})

    # -- entries: writes --------------------------------------------------------------------

    def add_entries(
        self,
        bank_name: str,
        records: Iterable[EntryRecord],
        *,
        actor: str,
        replace: bool = False,
        action: str = "bank.add",
        details: dict[str, Any] | None = None,
        variants: Mapping[tuple[str, str], Sequence[tuple[str, str]]] | None = None,
        commit_rows: int = 0,
    ) -> ImportCounts:
        """Add (or update) entries in one transaction; ``replace`` removes the bank's other
        entries. If ``records`` raises part way, nothing is changed. See
        :func:`amparo.store.bank_import.add_entries` (``variants``, ``commit_rows``)."""
        job = Job(self.get(bank_name), actor, action, details or {}, replace, variants or {})
        return add_entries(self.db, self.changes, job, records, commit_rows)

    def _change_entries(
        self,
        bank_name: str,
        signals: Sequence[tuple[str, str]],
        values: dict[str, Any],
        *,
        actor: str,
        action: str,
        ids: Sequence[int] = (),
        details: dict[str, Any] | None = None,
    ) -> int:
        """Change entries named by ``(type, signal)`` or by entry id, in one transaction."""
        bank = self.get(bank_name)
        assert bank.id is not None
        changed = 0
        keys: Any = [("signals", [tuple(s) for s in signals]), ("ids", [int(i) for i in ids])]
        with self.db.transaction() as tx:
            seq = self.changes.next_seq(tx.conn)
            for kind, wanted in keys:
                for start in range(0, len(wanted), 500):
                    part = wanted[start : start + 500]
                    match = (
                        tuple_(_entry.c.signal_type, _entry.c.signal_key).in_(
                            [(t, signal_key(v)) for t, v in part]
                        )
                        if kind == "signals"
                        else _entry.c.id.in_(part)
                    )
                    result = tx.conn.execute(
                        update(_entry)
                        .where(
                            _entry.c.bank_id == bank.id,
                            _entry.c.removed_at.is_(None),
                            NOT_VARIANT,  # variants follow their entry, never on their own
                            match,
                        )
                        .values(seq=seq, **values)
                    )
                    changed += int(result.rowcount or 0)
            follow_entries(tx.conn, bank.id, seq)
            audit: dict[str, Any] = {"count": changed, "signals": len(signals)}
            if ids:
                audit["ids"] = [int(i) for i in ids[:1000]]
            audit.update(details or {})
            tx.audit(actor, action, bank_name, audit)
        return changed

    def remove_entries(
        self, bank_name: str, signals: Sequence[tuple[str, str]], *, actor: str
    ) -> int:
        return self._change_entries(
            bank_name, signals, {"removed_at": utc_now()}, actor=actor, action="entry.remove"
        )

    def remove_entry_ids(self, bank_name: str, ids: Sequence[int], *, actor: str) -> int:
        """Remove entries of a bank by id; ids of other banks or unknown ids are ignored."""
        return self._change_entries(
            bank_name, [], {"removed_at": utc_now()}, actor=actor, action="entry.remove", ids=ids
        )

    def set_entries_enabled(
        self,
        bank_name: str,
        signals: Sequence[tuple[str, str]],
        enabled: bool,
        *,
        actor: str,
        ids: Sequence[int] = (),
    ) -> int:
        action = "entry.enable" if enabled else "entry.disable"
        return self._change_entries(
            bank_name, signals, {"enabled": enabled}, actor=actor, action=action, ids=ids
        )

    def set_entries_disabled_until(
        self,
        bank_name: str,
        signals: Sequence[tuple[str, str]],
        until: datetime | None,
        *,
        actor: str,
        ids: Sequence[int] = (),
    ) -> int:
        """Pause matching of entries until ``until`` (None lifts the pause)."""
        try:
            value = until.astimezone(UTC) if until is not None else None
        except OverflowError:
            raise InputError(
                f"{until} cannot be expressed in UTC", hint="use a date between years 2 and 9998"
            ) from None
        action = "entry.disable_until" if value is not None else "entry.resume"
        return self._change_entries(
            bank_name,
            signals,
            {"disabled_until": value},
            actor=actor,
            action=action,
            ids=ids,
            details={"until": value.isoformat() if value is not None else None},
        )

    # -- entries: reads ---------------------------------------------------------------------

    def iter_entries(self, bank_name: str, batch: int = 50_000) -> Iterator[EntryRecord]:
        """Every entry of a bank (not removed), in id order, for export."""
        bank = self.get(bank_name)
        last = 0
        with self.db.reading() as conn:
            while True:
                rows = conn.execute(
                    select(_entry)
                    .where(
                        _entry.c.bank_id == bank.id,
                        _entry.c.removed_at.is_(None),
                        NOT_VARIANT,
                        _entry.c.id > last,
                    )
                    .order_by(_entry.c.id)
                    .limit(batch)
                ).all()
                if not rows:
                    return
                last = int(rows[-1].id)
                for r in rows:
                    yield EntryRecord(
                        signal_type=r.signal_type,
                        signal=r.signal,
                        category=r.category,
                        tags=tags_of(r.tags),
                        source_id=r.source_id,
                        note=r.note,
                        enabled=bool(r.enabled),
                        provenance=json_object(r.provenance),
                    )

    def get_entries(self, ids: Iterable[int]) -> dict[int, EntryView]:
        """Entries by id (removed ones included, flagged), with their bank names."""
        wanted = sorted(set(int(i) for i in ids))
        out: dict[int, EntryView] = {}
        with self.db.reading() as conn:
            if len(wanted) == 1:
                rows = conn.execute(ENTRY_BY_ID, {"id": wanted[0]})
                out.update((int(r.id), entry_view(r)) for r in rows)
                return out
            for start in range(0, len(wanted), 900):
                rows = conn.execute(ENTRIES_BY_IDS, {"ids": wanted[start : start + 900]})
                out.update((int(r.id), entry_view(r)) for r in rows)
        return out

    def find_exact(self, signal_type: str, values: Sequence[str]) -> builtins.list[EntryView]:
        """Active entries whose signal equals one of ``values`` (paused entries excluded)."""
        out: builtins.list[EntryView] = []
        now = utc_now()
        with self.db.reading() as conn:
            for start in range(0, len(values), 900):
                query = ENTRY_WITH_BANK.where(
                    and_(
                        _entry.c.signal_type == signal_type,
                        _entry.c.signal_key.in_(
                            [signal_key(v) for v in values[start : start + 900]]
                        ),
                        _entry.c.removed_at.is_(None),
                        _entry.c.enabled.is_(True),
                        or_(_entry.c.disabled_until.is_(None), _entry.c.disabled_until <= now),
                    )
                )
                out.extend(entry_view(r) for r in conn.execute(query))
        return out

    def count_active(self, signal_type: str | None = None) -> int:
        query = (
            select(func.count())
            .select_from(_entry)
            .where(_entry.c.removed_at.is_(None), _entry.c.enabled.is_(True), NOT_VARIANT)
        )
        if signal_type is not None:
            query = query.where(_entry.c.signal_type == signal_type)
        with self.db.reading() as conn:
            return int(conn.execute(query).scalar_one())


def _check_threshold(threshold: int | None) -> None:
    if threshold is not None and not 0 <= int(threshold) <= MAX_PDQ_THRESHOLD:
        raise InputError(
            f"pdq_threshold {threshold} is out of range",
            hint=f"use 0 to {MAX_PDQ_THRESHOLD} (31 is PDQ's usual threshold)",
        )


def _check_kind(kind: str) -> None:
    if kind not in BANK_KINDS:
        raise InputError(
            f"unknown bank kind {kind!r}",
            hint="use 'positive' (known abuse material) or 'negative' (known benign)",
        )


def _bank_fields(info: BankInfo) -> dict[str, Any]:
    """The settings of a bank a curator chooses (what creating it audits)."""
    return {name: getattr(info, name) for name in _BANK_FIELDS}


def _bank_info(row: Any, count: int) -> BankInfo:
    return BankInfo(
        id=int(row.id),
        name=row.name,
        created_at=row.created_at,
        imported_at=row.imported_at,
        entry_count=count,
        **{name: getattr(row, name) for name in _BANK_FIELDS},  # Boolean columns give bools
    )
