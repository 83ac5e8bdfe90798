"""Tables of the exchanges work (on the shared declarative ``Base``; migration 0009).

``collaborations``: one configured use of an exchange feeding a bank, with its fetch state
(checkpoint, full-fetch generation, counters, last error). Deleting the bank deletes its
collaborations (and their records, quarantine and opinions) with it: a collaboration has no
meaning without the bank it feeds, and a bank deleted on purpose should not leave a fetcher
that silently re-creates nothing.
``exchange_records``: what each source record currently says (the source's own record id ->
signal), so deletions, hash changes and full-fetch withdrawals know which entry to remove.
``exchange_quarantine``: malformed records and pages kept for status and a later retry.
``exchange_opinions``: the outbox of reviewers' opinions going back to sources.
``leases``: named, expiring locks any background work can take (see ``store/leases.py``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from amparo.store.models import Base, BigId, SignalKey

__all__ = [
    "Base",
    "CollaborationRow",
    "ExchangeOpinionRow",
    "ExchangeQuarantineRow",
    "ExchangeRecordRow",
    "LeaseRow",
]


class CollaborationRow(Base):
    __tablename__ = "collaborations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    exchange: Mapped[str] = mapped_column(String(50))
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"))
    settings: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: the exchange's own settings (never a secret)."""
    credentials: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Where the secret is (``file:/path``, ``env:NAME``), never the secret itself."""
    interval_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    feedback: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    checkpoint: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON of the exchange's checkpoint, saved with the batch it closes."""
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    """Bumped when a full fetch begins; records not seen in it are withdrawn at its end."""
    full_in_progress: Mapped[bool] = mapped_column(Boolean, default=False)
    last_fetch_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    entries_added: Mapped[int] = mapped_column(BigInteger, default=0)
    entries_removed: Mapped[int] = mapped_column(BigInteger, default=0)


class ExchangeRecordRow(Base):
    """One source record as last fetched (a deleted one is kept, flagged)."""

    __tablename__ = "exchange_records"
    __table_args__ = (Index("ix_exchange_record_signal", "collab_id", "signal_type", "signal_key"),)

    collab_id: Mapped[int] = mapped_column(
        ForeignKey("collaborations.id", ondelete="CASCADE"), primary_key=True
    )
    record_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    signal_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    signal_key: Mapped[str | None] = mapped_column(SignalKey, nullable=True)
    signal: Mapped[str | None] = mapped_column(Text, nullable=True)
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """SHA-256 of what the record says (signal, category, tags, source ids, provenance): an
    unchanged record is not written to the bank again."""
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ExchangeQuarantineRow(Base):
    """A malformed record or page: kept (cut), counted, retried later."""

    __tablename__ = "exchange_quarantine"
    __table_args__ = (Index("ix_exchange_quarantine_collab", "collab_id", "resolved_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    collab_id: Mapped[int] = mapped_column(ForeignKey("collaborations.id", ondelete="CASCADE"))
    record_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text, default="")
    retry: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON: what the exchange needs to fetch it again; None: not refetchable."""
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_tried: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ExchangeOpinionRow(Base):
    """A reviewer's opinion on a source's record, waiting to be (or sent) back to it."""

    __tablename__ = "exchange_opinions"
    __table_args__ = (
        UniqueConstraint(
            "collab_id", "record_id", "item_id", "verdict", name="uq_exchange_opinion"
        ),
        Index("ix_exchange_opinion_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    collab_id: Mapped[int] = mapped_column(ForeignKey("collaborations.id", ondelete="CASCADE"))
    record_id: Mapped[str] = mapped_column(String(200))
    signal_type: Mapped[str] = mapped_column(String(16))
    signal: Mapped[str] = mapped_column(Text)
    verdict: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    reviewer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    item_id: Mapped[int] = mapped_column(BigInteger)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(10))
    """``queued``, ``sent`` or ``failed`` (gave up after too many attempts)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LeaseRow(Base):
    """A named lock held until ``expires_at`` by whoever has ``token``."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
