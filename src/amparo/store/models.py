"""SQLAlchemy models: everything that must survive. Every schema change gets an Alembic
migration in ``store/migrations/versions``."""

from __future__ import annotations

import hashlib
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY columns; PostgreSQL gets 64-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")
SIGNAL_KEY_MAX = 128
# Hash text compares bytewise: locale collation makes PostgreSQL's index work several times slower.
SignalKey = String(SIGNAL_KEY_MAX).with_variant(String(SIGNAL_KEY_MAX, collation="C"), "postgresql")


def signal_key(signal: str) -> str:
    """What uniqueness and exact lookups use: the signal itself, or for long ones (a video's
    vPDQ runs to kilobytes, past what a PostgreSQL B-tree entry may hold) its SHA-256."""
    if len(signal) <= SIGNAL_KEY_MAX:
        return signal
    return "sha256:" + hashlib.sha256(signal.encode()).hexdigest()


class Base(DeclarativeBase):
    pass


class BankRow(Base):
    __tablename__ = "banks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text, default="")
    supplier: Mapped[str] = mapped_column(Text, default="")
    terms: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    pdq_threshold: Mapped[int | None] = mapped_column(Integer, nullable=True)
    dihedral: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    imported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EntryRow(Base):
    """One hash of a bank. Removal is soft (``removed_at``) so the change log (``seq``) can
    tell indexes what to drop; ``seq`` is bumped on every change that affects matching."""

    __tablename__ = "bank_entries"
    __table_args__ = (
        # (type, signal) first: the same index enforces uniqueness and serves exact lookups.
        UniqueConstraint("signal_type", "signal_key", "bank_id", name="uq_entry_signal_key"),
        Index("ix_entry_bank", "bank_id"),
        Index("ix_entry_seq", "seq"),
        # A bank's change log in order: what a federation feed's pages read (migration 0010).
        Index("ix_entry_bank_seq", "bank_id", "seq", "id"),
        # The console's entry search by source id (migration 0013). A hash index on
        # PostgreSQL: equality is all it serves, and a B-tree refuses values over ~2.7 kB.
        Index("ix_entry_source_id", "source_id", postgresql_using="hash"),
        # An entry's variants, found when it changes (migration 0014).
        Index("ix_entry_variant_of", "variant_of"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"))
    signal_type: Mapped[str] = mapped_column(String(16))
    signal: Mapped[str] = mapped_column(Text)
    signal_key: Mapped[str] = mapped_column(SignalKey)
    """The signal, or the SHA-256 of a long one (see :func:`signal_key`)."""
    category: Mapped[str | None] = mapped_column(String(100), nullable=True)
    tags: Mapped[str] = mapped_column(Text, default="")
    source_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    # Not matched before this time (an entry under review, a disputed hash); None: no pause.
    disabled_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Where the entry came from and who vouches for it (JSON of exchanges.model.Provenance);
    # a change of provenance alone does not move ``seq`` (migration 0010).
    provenance: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A variant of another entry of the bank (the PDQ of a crop of media added to it): that
    # entry's id, and which variant (``crop5-left``...); None on entries (migration 0014).
    # Derived data: never exported, shared or counted; it follows its entry's state.
    variant_of: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("bank_entries.id", ondelete="CASCADE"), nullable=True
    )
    variant: Mapped[str | None] = mapped_column(String(32), nullable=True)


def variant_key(entry_id: int, variant: str) -> str:
    """The ``signal_key`` of a variant: its entry's id and its name, never a hash (so no
    exact lookup finds it and it never collides with an entry's key)."""
    return f"{entry_id}:{variant}"


class CounterRow(Base):
    """Monotonic counters. ``entry_seq`` orders entry changes: a transaction reserves a block
    under a row lock, so sequence numbers become visible in commit order."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class AuditRow(Base):
    """Append-only, hash-chained record of every change (who, when, what).

    ``seq`` numbers entries 1, 2, 3... without gaps; ``hash`` is the SHA-256 of the entry's
    canonical form, which includes ``prev_hash``, the hash of entry ``seq - 1`` (see
    ``store.audit``): editing, removing or reordering an entry breaks the chain."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_seq", "seq", unique=True), Index("ix_audit_target", "target"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[str] = mapped_column(Text, default="{}")
    seq: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class EntryTombstoneRow(Base):
    """Ids of entries deleted with their bank, so indexes catching up from ``seq`` drop them."""

    __tablename__ = "entry_tombstones"
    __table_args__ = (Index("ix_tombstone_seq", "seq"),)

    entry_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    signal_type: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(BigInteger)


class MatchVolumeRow(Base):
    """How many lookups matched a bank on one day (UTC), by where they came from: counts
    only (never a hash, a path or anything of the content), added to by every process's
    :class:`amparo.tally.MatchTally` (migration 0013)."""

    __tablename__ = "match_volume"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    bank_id: Mapped[int] = mapped_column(
        ForeignKey("banks.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    """``api``, ``scan``, ``cli``, ``hotline``, ``retro``, or ``lookup`` (a bare lookup whose
    caller said nothing)."""
    matches: Mapped[int] = mapped_column(BigInteger, default=0)
