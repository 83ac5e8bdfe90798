"""The store: banks, entries, the entry change log and the audit log, behind one class.

Nothing outside ``store/`` talks to SQLAlchemy. Writes that belong together happen in one
transaction: an import that fails half way leaves the bank exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, overload

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from amparo.banks.model import BankInfo, EntryRecord
from amparo.config import MAX_PDQ_THRESHOLD, Settings
from amparo.errors import BankNotFoundError, ConflictError, InputError
from amparo.store import audit as audit_chain
from amparo.store.db import make_engine, migrate
from amparo.store.models import AuditRow, BankRow, CounterRow, EntryRow, EntryTombstoneRow
from amparo.store.models_review import BANK_KINDS
from amparo.store.secrets import SecretBox, open_sealed
from amparo.store.uow import Database, UnitOfWork

if TYPE_CHECKING:
    from amparo.evidence.crypto import Keyring

_log = logging.getLogger(__name__)

BATCH = 20_000
SIGNAL_KEY_MAX = 128
_BANK_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
_bank = cast(Table, BankRow.__table__)
_entry = cast(Table, EntryRow.__table__)
# Statements built once: a matcher looks entries up by id on every hit it has not cached,
# and building, coercing and cache-keying a new select each time cost more than running it.
_ENTRY_WITH_BANK = select(_entry, _bank.c.name.label("bank_name")).join(
    _bank, _bank.c.id == _entry.c.bank_id
)
_ENTRY_BY_ID = _ENTRY_WITH_BANK.where(_entry.c.id == bindparam("id"))
_ENTRIES_BY_IDS = _ENTRY_WITH_BANK.where(_entry.c.id.in_(bindparam("ids", expanding=True)))
_counter = cast(Table, CounterRow.__table__)
_tomb = cast(Table, EntryTombstoneRow.__table__)
_audit = cast(Table, AuditRow.__table__)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class EntryView:
    """A stored entry with its bank's name (what a match reports)."""

    id: int
    bank_id: int
    bank_name: str
    signal_type: str
    signal: str
    category: str | None
    tags: list[str]
    source_id: str | None
    note: str | None
    enabled: bool
    removed: bool
    added_at: datetime
    disabled_until: datetime | None = None
    """Not matched before this time (UTC), when set."""

    def paused(self, now: datetime | None = None) -> bool:
        """Whether the entry is disabled until a time that has not come yet."""
        return self.disabled_until is not None and self.disabled_until > (now or _now())


@dataclass
class ImportCounts:
    added: int = 0
    updated: int = 0
    removed: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class EntryChanges:
    """Entry changes after a change-log position, for an index catching up."""

    seq: int
    """The newest position included; pass it back next time."""
    upserts: list[tuple[int, str, str]]
    """``(entry id, signal type, signal)`` of entries now active."""
    removals: list[tuple[int, str]]
    """``(entry id, signal type)`` of entries no longer active."""


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    seq: int = 0
    """Position in the hash chain (1, 2, 3...)."""
    prev_hash: str = ""
    hash: str = ""
    """SHA-256 over the entry and ``prev_hash`` (see ``store.audit``)."""


def validate_bank_name(name: str) -> str:
    if not name or len(name) > 100 or not set(name) <= _BANK_NAME_CHARS or name[0] in "-.":
        raise InputError(
            f"invalid bank name {name!r}",
            hint="use up to 100 letters, digits, '_', '-' or '.', not starting with '-' or '.'",
        )
    return name


class Store:
    """Persistent state of one Amparo installation."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        migrate(self.engine)
        self.db = Database(self.engine)
        """Transactions (units of work) and reads; see :mod:`amparo.store.uow`."""
        self._db = self.db
        self.secrets: SecretBox | None = None
        """Seals webhook secrets at rest; set by :meth:`configure_secrets`."""
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            for name, value in (("entry_seq", 0), ("installation_id", secrets.randbits(62))):
                exists = conn.execute(select(_counter.c.value).where(_counter.c.name == name))
                if exists.first() is None:
                    conn.execute(insert(_counter).values(name=name, value=value))
            self.installation_id = int(
                conn.execute(
                    select(_counter.c.value).where(_counter.c.name == "installation_id")
                ).scalar_one()
            )

    def close(self) -> None:
        # What this process wrote since the last checkpoint gets signed before it goes.
        try:
            audit_chain.flush(self.engine)
        except SQLAlchemyError as exc:  # closing must not fail; verify shows the gap
            _log.warning("could not sign the audit chain's head at close: %s", exc)
        self.engine.dispose()

    @property
    def generation(self) -> int:
        """Bumped by every write this process commits that affects matching or rules."""
        return self.db.generation

    def transaction(self, *, refresh: bool = True) -> AbstractContextManager[UnitOfWork]:
        """A unit of work: every write made inside it (by any service) and its audit
        entries commit together (see :mod:`amparo.store.uow`)."""
        return self.db.transaction(refresh=refresh)

    # -- change log -----------------------------------------------------------------------

    @staticmethod
    def _next_seq(conn: Connection) -> int:
        """Reserve the next change-log position. The row lock taken here is held until the
        transaction commits, so positions become visible in increasing order."""
        conn.execute(
            update(_counter)
            .where(_counter.c.name == "entry_seq")
            .values(value=_counter.c.value + 1)
        )
        return int(
            conn.execute(
                select(_counter.c.value).where(_counter.c.name == "entry_seq")
            ).scalar_one()
        )

    def current_seq(self) -> int:
        with self._db.reading() as conn:
            return int(
                conn.execute(
                    select(_counter.c.value).where(_counter.c.name == "entry_seq")
                ).scalar_one()
            )

    def changes_since(self, seq: int, signal_types: Sequence[str] | None = None) -> EntryChanges:
        """Entry changes with a change-log position greater than ``seq``."""
        with self._db.reading() as conn:
            top = int(
                conn.execute(
                    select(_counter.c.value).where(_counter.c.name == "entry_seq")
                ).scalar_one()
            )
            query = select(
                _entry.c.id,
                _entry.c.signal_type,
                _entry.c.signal,
                _entry.c.enabled,
                _entry.c.removed_at,
            ).where(_entry.c.seq > seq, _entry.c.seq <= top)
            tomb_q = select(_tomb.c.entry_id, _tomb.c.signal_type).where(
                _tomb.c.seq > seq, _tomb.c.seq <= top
            )
            if signal_types is not None:
                tomb_q = tomb_q.where(_tomb.c.signal_type.in_(list(signal_types)))
            # Entry types are filtered here, not in SQL: with a type condition SQLite picks
            # the (type, signal) index and scans every entry of the type on each call.
            wanted = set(signal_types) if signal_types is not None else None
            upserts: list[tuple[int, str, str]] = []
            removals: list[tuple[int, str]] = []
            for row in conn.execute(query):
                if wanted is not None and row.signal_type not in wanted:
                    continue
                if row.enabled and row.removed_at is None:
                    upserts.append((int(row.id), row.signal_type, row.signal))
                else:
                    removals.append((int(row.id), row.signal_type))
            removals.extend((int(r.entry_id), r.signal_type) for r in conn.execute(tomb_q))
        return EntryChanges(seq=top, upserts=upserts, removals=removals)

    def iter_active_signals(
        self, signal_type: str, batch: int = 100_000
    ) -> Iterator[list[tuple[int, str]]]:
        """``(id, signal)`` of every active entry of one type, in id order, in batches."""
        last = 0
        with self._db.reading() as conn:
            while True:
                rows = conn.execute(
                    select(_entry.c.id, _entry.c.signal)
                    .where(
                        _entry.c.signal_type == signal_type,
                        _entry.c.removed_at.is_(None),
                        _entry.c.enabled.is_(True),
                        _entry.c.id > last,
                    )
                    .order_by(_entry.c.id)
                    .limit(batch)
                ).all()
                if not rows:
                    return
                last = int(rows[-1].id)
                yield [(int(r.id), r.signal) for r in rows]

    # -- banks ------------------------------------------------------------------------------

    def create_bank(self, info: BankInfo, *, actor: str) -> BankInfo:
        validate_bank_name(info.name)
        _check_threshold(info.pdq_threshold)
        _check_kind(info.kind)
        now = _now()
        try:
            with self._db.transaction() as tx:
                conn = tx.conn
                conn.execute(
                    insert(_bank).values(
                        name=info.name,
                        description=info.description,
                        source=info.source,
                        supplier=info.supplier,
                        terms=info.terms,
                        enabled=info.enabled,
                        pdq_threshold=info.pdq_threshold,
                        dihedral=info.dihedral,
                        kind=info.kind,
                        created_at=now,
                        updated_at=now,
                    )
                )
                tx.audit(actor, "bank.create", info.name, _bank_fields(info))
        except IntegrityError:
            raise ConflictError(
                f"bank {info.name!r} already exists", hint="choose another name or import into it"
            ) from None
        return self.get_bank(info.name)

    def get_bank(self, name: str) -> BankInfo:
        with self._db.reading() as conn:
            row = conn.execute(select(_bank).where(_bank.c.name == name)).first()
            if row is None:
                raise BankNotFoundError(
                    f"no bank named {name!r}", hint="see `amparo bank list` for the banks there are"
                )
            count = conn.execute(
                select(func.count())
                .select_from(_entry)
                .where(_entry.c.bank_id == row.id, _entry.c.removed_at.is_(None))
            ).scalar_one()
        return _bank_info(row, int(count))

    def list_banks(self, *, with_counts: bool = True) -> list[BankInfo]:
        """All banks by name; ``with_counts=False`` skips counting entries (cheap)."""
        with self._db.reading() as conn:
            counts: dict[int, int] = {}
            if with_counts:
                counts = dict(
                    conn.execute(
                        select(_entry.c.bank_id, func.count())
                        .where(_entry.c.removed_at.is_(None))
                        .group_by(_entry.c.bank_id)
                    ).all()
                )
            rows = conn.execute(select(_bank).order_by(_bank.c.name)).all()
        return [_bank_info(r, int(counts.get(r.id, 0))) for r in rows]

    def update_bank(self, name: str, *, actor: str, **changes: Any) -> BankInfo:
        allowed = {
            "description",
            "source",
            "supplier",
            "terms",
            "enabled",
            "pdq_threshold",
            "dihedral",
            "kind",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise InputError(f"cannot change {', '.join(sorted(unknown))} of a bank")
        _check_threshold(changes.get("pdq_threshold"))
        if "kind" in changes:
            _check_kind(changes["kind"])
        bank = self.get_bank(name)
        with self._db.transaction() as tx:
            conn = tx.conn
            conn.execute(
                update(_bank).where(_bank.c.id == bank.id).values(updated_at=_now(), **changes)
            )
            tx.audit(actor, "bank.update", name, changes)
        return self.get_bank(name)

    def delete_bank(self, name: str, *, actor: str) -> None:
        bank = self.get_bank(name)
        with self._db.transaction() as tx:
            conn = tx.conn
            seq = self._next_seq(conn)
            conn.execute(
                insert(_tomb).from_select(
                    ["entry_id", "signal_type", "seq"],
                    select(_entry.c.id, _entry.c.signal_type, literal(seq, BigInteger)).where(
                        _entry.c.bank_id == bank.id
                    ),
                )
            )
            conn.execute(delete(_entry).where(_entry.c.bank_id == bank.id))
            conn.execute(delete(_bank).where(_bank.c.id == bank.id))
            tx.audit(actor, "bank.delete", name, {"entries": bank.entry_count})

    # -- entries ----------------------------------------------------------------------------

    def add_entries(
        self,
        bank_name: str,
        records: Iterable[EntryRecord],
        *,
        actor: str,
        replace: bool = False,
        action: str = "bank.add",
        details: dict[str, Any] | None = None,
    ) -> ImportCounts:
        """Add (or update) entries in one transaction; ``replace`` removes the bank's other
        entries. If ``records`` raises part way, nothing is changed.

        Rows are bulk-loaded into a temporary staging table (COPY on PostgreSQL), then merged
        with one sorted ``INSERT ... SELECT ... ON CONFLICT``: a million entries take seconds.
        """
        bank = self.get_bank(bank_name)
        assert bank.id is not None
        counts = ImportCounts()
        now = _now()
        with self._db.transaction() as tx:
            conn = tx.conn
            seq = self._next_seq(conn)
            staging = _Staging(conn)
            try:
                staging.load(records)
                existing = staging.count_existing(bank.id)
                merged = staging.merge(bank.id, now, seq)
                counts.added = merged - existing
                counts.updated = existing
                if replace:
                    counts.removed = staging.remove_others(bank.id, now, seq)
            finally:
                staging.drop()
            conn.execute(
                update(_bank).where(_bank.c.id == bank.id).values(updated_at=now, imported_at=now)
            )
            audit = {"added": counts.added, "updated": counts.updated, "removed": counts.removed}
            audit.update(details or {})
            tx.audit(actor, action, bank_name, audit)
        return counts

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
        bank = self.get_bank(bank_name)
        changed = 0
        keys: list[Any] = [("signals", list(signals)), ("ids", [int(i) for i in ids])]
        with self._db.transaction() as tx:
            conn = tx.conn
            seq = self._next_seq(conn)
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
                    result = conn.execute(
                        update(_entry)
                        .where(_entry.c.bank_id == bank.id, _entry.c.removed_at.is_(None), match)
                        .values(seq=seq, **values)
                    )
                    changed += int(result.rowcount or 0)
            audit: dict[str, Any] = {"count": changed, "signals": len(signals)}
            if ids:
                audit["ids"] = [int(i) for i in ids[:1000]]
            audit.update(details or {})
            tx.audit(actor, action, bank_name, audit)
        return changed

    def remove_entry_ids(self, bank_name: str, ids: Sequence[int], *, actor: str) -> int:
        """Remove entries of a bank by id; ids of other banks or unknown ids are ignored."""
        return self._change_entries(
            bank_name, [], {"removed_at": _now()}, actor=actor, action="entry.remove", ids=ids
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

    def remove_entries(
        self, bank_name: str, signals: Sequence[tuple[str, str]], *, actor: str
    ) -> int:
        return self._change_entries(
            bank_name, signals, {"removed_at": _now()}, actor=actor, action="entry.remove"
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

    def iter_entries(self, bank_name: str, batch: int = 50_000) -> Iterator[EntryRecord]:
        """Every entry of a bank (not removed), in id order, for export."""
        bank = self.get_bank(bank_name)
        last = 0
        with self._db.reading() as conn:
            while True:
                rows = conn.execute(
                    select(_entry)
                    .where(
                        _entry.c.bank_id == bank.id,
                        _entry.c.removed_at.is_(None),
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
                        tags=_tags(r.tags),
                        source_id=r.source_id,
                        note=r.note,
                        enabled=bool(r.enabled),
                    )

    def get_entries(self, ids: Iterable[int]) -> dict[int, EntryView]:
        """Entries by id (removed ones included, flagged), with their bank names."""
        wanted = sorted(set(int(i) for i in ids))
        out: dict[int, EntryView] = {}
        with self._db.reading() as conn:
            if len(wanted) == 1:
                rows = conn.execute(_ENTRY_BY_ID, {"id": wanted[0]})
                out.update((int(r.id), _entry_view(r)) for r in rows)
                return out
            for start in range(0, len(wanted), 900):
                rows = conn.execute(_ENTRIES_BY_IDS, {"ids": wanted[start : start + 900]})
                out.update((int(r.id), _entry_view(r)) for r in rows)
        return out

    def find_exact(self, signal_type: str, values: Sequence[str]) -> list[EntryView]:
        """Active entries whose signal equals one of ``values`` (paused entries excluded)."""
        out: list[EntryView] = []
        now = _now()
        with self._db.reading() as conn:
            for start in range(0, len(values), 900):
                query = (
                    select(_entry, _bank.c.name.label("bank_name"))
                    .join(_bank, _bank.c.id == _entry.c.bank_id)
                    .where(
                        and_(
                            _entry.c.signal_type == signal_type,
                            _entry.c.signal_key.in_(
                                [signal_key(v) for v in values[start : start + 900]]
                            ),
                            _entry.c.removed_at.is_(None),
                            _entry.c.enabled.is_(True),
                            or_(
                                _entry.c.disabled_until.is_(None),
                                _entry.c.disabled_until <= now,
                            ),
                        )
                    )
                )
                out.extend(_entry_view(r) for r in conn.execute(query))
        return out

    def count_active(self, signal_type: str | None = None) -> int:
        query = (
            select(func.count())
            .select_from(_entry)
            .where(_entry.c.removed_at.is_(None), _entry.c.enabled.is_(True))
        )
        if signal_type is not None:
            query = query.where(_entry.c.signal_type == signal_type)
        with self._db.reading() as conn:
            return int(conn.execute(query).scalar_one())

    # -- audit ------------------------------------------------------------------------------

    def audit(
        self, action: str, target: str = "", details: dict[str, Any] | None = None, *, actor: str
    ) -> None:
        """Record one event in the audit log: in the open unit of work when there is one
        (it commits or rolls back with the change it records), else in its own."""
        with self._db.transaction(refresh=False) as tx:
            tx.audit(actor, action, target, details or {})

    def configure_audit(
        self, settings: Settings, clock: Callable[[], datetime] | None = None
    ) -> None:
        """Sign audit checkpoints with the installation's key every
        ``settings.audit_checkpoint_every`` entries, at most every
        ``settings.audit_checkpoint_seconds`` when anything was written, and at close."""
        audit_chain.configure(
            self.engine,
            audit_chain.AuditSigner(audit_key_path(settings)),
            settings.audit_checkpoint_every,
            settings.audit_checkpoint_seconds,
            clock,
        )

    def configure_secrets(self, keyring: Callable[[], Keyring]) -> None:
        """Seal secrets (webhook signing secrets) with ``keyring`` (loaded on first use), and
        encrypt those an older version stored in clear."""
        self.secrets = SecretBox(self.db, keyring)
        self.secrets.seal_plain()

    def seal_secret(self, secret: str, context: str) -> str:
        """What to store for ``secret``: sealed when a keyring is configured."""
        return self.secrets.seal(secret, context) if self.secrets is not None else secret

    def open_secret(self, stored: str, context: str) -> str:
        """The secret a stored value holds."""
        return open_sealed(self.secrets, stored, context)

    def audit_entries(
        self,
        limit: int = 100,
        target: str | None = None,
        *,
        before: int | None = None,
        action: str | None = None,
    ) -> list[AuditEntry]:
        """The newest entries first (optionally about one ``target``, of one ``action``, or
        older than position ``before``)."""
        query = select(_audit).order_by(_audit.c.seq.desc()).limit(limit)
        if target is not None:
            query = query.where(_audit.c.target == target)
        if action is not None:
            query = query.where(_audit.c.action == action)
        if before is not None:
            query = query.where(_audit.c.seq < before)
        with self._db.reading() as conn:
            return [
                AuditEntry(
                    int(r.id),
                    as_utc(r.at) or r.at,
                    r.actor,
                    r.action,
                    r.target,
                    json.loads(r.details),
                    seq=int(r.seq),
                    prev_hash=r.prev_hash,
                    hash=r.hash,
                )
                for r in conn.execute(query)
            ]


def audit_key_path(settings: Settings) -> Path:
    """Where the audit signing key lives: ``audit_signing_key_file``, else under <home>."""
    if settings.audit_signing_key_file:
        return Path(settings.audit_signing_key_file).expanduser()
    return settings.home / "keys" / "audit-signing.key"


def signal_key(signal: str) -> str:
    """What uniqueness and exact lookups use: the signal itself, or for long ones (a video's
    vPDQ runs to kilobytes, past what a PostgreSQL B-tree entry may hold) its SHA-256."""
    if len(signal) <= SIGNAL_KEY_MAX:
        return signal
    return "sha256:" + hashlib.sha256(signal.encode()).hexdigest()


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


def _tags(raw: str) -> list[str]:
    return list(json.loads(raw)) if raw else []


def _bank_fields(info: BankInfo) -> dict[str, Any]:
    return {
        "description": info.description,
        "source": info.source,
        "supplier": info.supplier,
        "terms": info.terms,
        "enabled": info.enabled,
        "pdq_threshold": info.pdq_threshold,
        "dihedral": info.dihedral,
        "kind": info.kind,
    }


def _bank_info(row: Any, count: int) -> BankInfo:
    return BankInfo(
        id=int(row.id),
        name=row.name,
        description=row.description,
        source=row.source,
        supplier=row.supplier,
        terms=row.terms,
        enabled=bool(row.enabled),
        pdq_threshold=row.pdq_threshold,
        dihedral=bool(row.dihedral),
        kind=row.kind,
        created_at=row.created_at,
        imported_at=row.imported_at,
        entry_count=count,
    )


def _entry_view(r: Any) -> EntryView:
    return EntryView(
        id=int(r.id),
        bank_id=int(r.bank_id),
        bank_name=r.bank_name,
        signal_type=r.signal_type,
        signal=r.signal,
        category=r.category,
        tags=_tags(r.tags),
        source_id=r.source_id,
        note=r.note,
        enabled=bool(r.enabled),
        removed=r.removed_at is not None,
        added_at=r.added_at,
        disabled_until=as_utc(r.disabled_until),
    )


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: datetime | None) -> datetime | None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything Amparo stores is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


_STAGING_COLUMNS = (
    "signal_type",
    "signal",
    "signal_key",
    "category",
    "tags",
    "source_id",
    "note",
    "enabled",
)
# The last of duplicate signals in one import wins.
_LATEST = "s.n IN (SELECT max(n) FROM amparo_staging GROUP BY signal_type, signal_key)"


class _Staging:
    """A temporary table that bulk imports pass through."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        serial = "BIGSERIAL PRIMARY KEY" if self.pg else "INTEGER PRIMARY KEY"
        signal = 'TEXT COLLATE "C"' if self.pg else "TEXT"
        conn.exec_driver_sql("DROP TABLE IF EXISTS amparo_staging")
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE amparo_staging (n {serial}, signal_type TEXT, signal TEXT, "
            f"signal_key {signal}, "
            "category TEXT, tags TEXT, source_id TEXT, note TEXT, enabled BOOLEAN)"
        )

    def load(self, records: Iterable[EntryRecord]) -> None:
        cursor: Any = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cols = ", ".join(_STAGING_COLUMNS)
        batch: list[tuple[Any, ...]] = []

        def flush() -> None:
            if not batch:
                return
            if self.pg:
                with cursor.copy(f"COPY amparo_staging ({cols}) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
            else:
                cursor.executemany(
                    f"INSERT INTO amparo_staging ({cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch
                )
            batch.clear()

        try:
            for r in records:
                batch.append(
                    (
                        r.signal_type,
                        r.signal,
                        signal_key(r.signal),
                        r.category,
                        json.dumps(r.tags) if r.tags else "",
                        r.source_id,
                        r.note,
                        bool(r.enabled),
                    )
                )
                if len(batch) >= BATCH:
                    flush()
            flush()
        finally:
            cursor.close()
        self.conn.exec_driver_sql(
            "CREATE INDEX amparo_staging_key ON amparo_staging (signal_type, signal_key)"
        )
        if self.pg:
            self.conn.exec_driver_sql("ANALYZE amparo_staging")

    def count_existing(self, bank_id: int) -> int:
        """Distinct staged signals already active in the bank."""
        return int(
            self.conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT DISTINCT signal_type, signal_key "
                    "FROM amparo_staging) s WHERE EXISTS (SELECT 1 FROM bank_entries e "
                    "WHERE e.signal_type = s.signal_type AND e.signal_key = s.signal_key "
                    "AND e.bank_id = :bank AND e.removed_at IS NULL)"
                ),
                {"bank": bank_id},
            ).scalar_one()
        )

    def merge(self, bank_id: int, now: datetime, seq: int) -> int:
        """Insert or update the staged entries; return how many distinct signals were staged.
        A row's change-log position moves only when its matching state changes (it was
        removed, or ``enabled`` flips), so re-importing a list does not churn the index."""
        stmt = text(
            "INSERT INTO bank_entries (bank_id, signal_type, signal, signal_key, category, tags, "
            "source_id, note, enabled, added_at, removed_at, seq) "
            "SELECT :bank, s.signal_type, s.signal, s.signal_key, s.category, s.tags, "
            "s.source_id, s.note, s.enabled, :now, NULL, :seq FROM amparo_staging s "
            "WHERE " + _LATEST + " ORDER BY s.signal_type, s.signal_key "
            "ON CONFLICT (signal_type, signal_key, bank_id) DO UPDATE SET "
            "signal = excluded.signal, category = excluded.category, tags = excluded.tags, "
            "source_id = excluded.source_id, note = excluded.note, enabled = excluded.enabled, "
            "added_at = CASE WHEN bank_entries.removed_at IS NULL THEN bank_entries.added_at "
            "ELSE excluded.added_at END, "
            "seq = CASE WHEN bank_entries.removed_at IS NOT NULL "
            "OR bank_entries.enabled <> excluded.enabled THEN excluded.seq "
            "ELSE bank_entries.seq END, "
            "removed_at = NULL"
        ).bindparams(bindparam("now", type_=DateTime(timezone=True)))
        self.conn.execute(stmt, {"bank": bank_id, "now": now, "seq": seq})
        return int(
            self.conn.execute(
                text(
                    "SELECT count(*) FROM "
                    "(SELECT DISTINCT signal_type, signal_key FROM amparo_staging) d"
                )
            ).scalar_one()
        )

    def remove_others(self, bank_id: int, now: datetime, seq: int) -> int:
        stmt = text(
            "UPDATE bank_entries SET removed_at = :now, seq = :seq "
            "WHERE bank_id = :bank AND removed_at IS NULL AND NOT EXISTS ("
            "SELECT 1 FROM amparo_staging s WHERE s.signal_type = bank_entries.signal_type "
            "AND s.signal_key = bank_entries.signal_key)"
        ).bindparams(bindparam("now", type_=DateTime(timezone=True)))
        result = self.conn.execute(stmt, {"bank": bank_id, "now": now, "seq": seq})
        return int(result.rowcount or 0)

    def drop(self) -> None:
        self.conn.exec_driver_sql("DROP TABLE IF EXISTS amparo_staging")
