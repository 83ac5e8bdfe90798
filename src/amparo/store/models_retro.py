"""Tables of retroactive matching and the share-back path (migration 0011).

``retro_hashes``: the hashes (never the media) of content checked in the last
``retro_match_days`` days, one row per content (SHA-256), with the source a later find needs.
``retro_signals``: each retained signal on its own row, so new entries are matched against
them by an indexed equality (digests) or a scan of one type (PDQ), never against every entry.
``retro_finds``: which (content, entry) pairs were already found, so each is acted on once.
``bank_proposals``: a reviewer-confirmed item proposed to an outgoing bank, waiting for a
curator (pending -> approved / rejected).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from amparo.store.models import Base, BigId, SignalKey

__all__ = ["Base", "ProposalRow", "RetroFindRow", "RetroHashRow", "RetroSignalRow"]


class RetroHashRow(Base):
    """One piece of content checked recently: its signals and where it was seen."""

    __tablename__ = "retro_hashes"
    __table_args__ = (
        UniqueConstraint("sha256", name="uq_retro_hash_sha256"),
        Index("ix_retro_hash_checked_at", "checked_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64))
    signals: Mapped[str] = mapped_column(Text)
    """JSON: signal type -> value, every signal the check computed (PDQ, MD5, SHA-1,
    SHA-256, vPDQ)."""
    detail: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: what a find reports besides the signals (size, media type, PDQ quality and
    dihedral variants)."""
    source: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: the latest sighting's ``Source.as_dict()``."""
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RetroSignalRow(Base):
    """One retained signal of one content (the matching side of ``retro_hashes``)."""

    __tablename__ = "retro_signals"
    __table_args__ = (Index("ix_retro_signal_value", "signal_type", "signal_key"),)

    hash_id: Mapped[int] = mapped_column(
        ForeignKey("retro_hashes.id", ondelete="CASCADE"), primary_key=True
    )
    signal_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    signal_key: Mapped[str] = mapped_column(SignalKey)
    """The signal, or the SHA-256 of a long one (as ``bank_entries.signal_key``)."""


class RetroFindRow(Base):
    """A (content, entry) pair already found: by the check itself or retroactively."""

    __tablename__ = "retro_finds"

    hash_id: Mapped[int] = mapped_column(
        ForeignKey("retro_hashes.id", ondelete="CASCADE"), primary_key=True
    )
    entry_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    found_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProposalRow(Base):
    """A confirmed item proposed to a bank; published only once a curator approves it."""

    __tablename__ = "bank_proposals"
    __table_args__ = (
        # Set only while pending ("<item>:<bank>"): at most one pending proposal per item and
        # bank, enforced by the database (NULLs never collide, on SQLite and PostgreSQL).
        UniqueConstraint("pending_key", name="uq_bank_proposal_pending"),
        Index("ix_bank_proposal_state", "state"),
        Index("ix_bank_proposal_item", "item_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("case_items.id", ondelete="CASCADE"))
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    """``pending``, ``approved`` or ``rejected``."""
    pending_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    proposed_by: Mapped[str] = mapped_column(String(200))
    proposed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Why a curator rejected it."""
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The proposer's note to the curator."""
    jurisdiction: Mapped[str | None] = mapped_column(String(8), nullable=True)
    """ISO 3166 code the proposer assessed it under (provenance), if given."""
    entries: Mapped[str] = mapped_column(Text, default="[]")
    """JSON: on approval, the ``[signal type, signal]`` pairs added to the bank."""
