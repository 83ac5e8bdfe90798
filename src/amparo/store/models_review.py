"""Tables of the review work: cases, their items, decisions, reveals, reviewer web sessions
and false-positive counts of bank entries; plus the ``kind`` column of ``banks``.

Migration: ``versions/0004_review.py``. Media is never stored here: items name content by its
hashes and point at the evidence store for a preserved copy.
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

from amparo.store.models import BankRow, Base, BigId

BANK_KINDS = ("positive", "negative")
"""``positive``: known abuse material (a match is a find). ``negative``: known-benign content
whose matches suppress positive matches of the same query."""

# The bank's kind lives on ``banks`` itself (the matcher reads it with the other bank settings);
# it is declared here, with the rest of the review schema, and added by migration 0004.
setattr(  # noqa: B010 - adds a mapped column to a class declared in models.py
    BankRow,
    "kind",
    mapped_column(
        "kind", String(16), nullable=False, default="positive", server_default="positive"
    ),
)


class CaseRow(Base):
    """A group of items for review: one content, or the finds of one account or scan."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_case_group", "group_key", "status"),
        Index("ix_case_queue", "status", "priority", "opened_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    group_key: Mapped[str] = mapped_column(String(300))
    """``content:<sha256>``, ``account:<id>`` or ``scan:<id>``."""
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str | None] = mapped_column(String(200), nullable=True)
    opened_by: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseItemRow(Base):
    """One content (SHA-256) in a case, with its matches and how often it was seen."""

    __tablename__ = "case_items"
    __table_args__ = (
        UniqueConstraint("case_id", "sha256", name="uq_case_item_content"),
        Index("ix_case_item_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    media_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    mime: Mapped[str | None] = mapped_column(String(100), nullable=True)
    file_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: the first sighting's ``Source.as_dict()``."""
    matches: Mapped[str] = mapped_column(Text, default="[]")
    """JSON: ``Match.to_json()`` of every bank entry the content matched."""
    evidence_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    priority: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    """``pending``, ``escalated`` or ``decided`` (the latest decision says how)."""
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sightings: Mapped[int] = mapped_column(Integer, default=1)
    viewed: Mapped[bool] = mapped_column(Boolean, default=False)


class DecisionRow(Base):
    """A reviewer's decision on one item; the latest one counts, earlier ones stay."""

    __tablename__ = "review_decisions"
    __table_args__ = (Index("ix_decision_item", "item_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("case_items.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    classification: Mapped[str | None] = mapped_column(String(4), nullable=True)
    annotations: Mapped[str] = mapped_column(Text, default="[]")
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    reviewer: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RevealRow(Base):
    """A reviewer deliberately looked at one item's clear media (exposure accounting)."""

    __tablename__ = "review_reveals"
    __table_args__ = (Index("ix_reveal_reviewer_at", "reviewer", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("case_items.id", ondelete="CASCADE"))
    reviewer: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReviewSessionRow(Base):
    """A signed-in browser. Only the SHA-256 of the cookie's token is stored."""

    __tablename__ = "review_sessions"
    __table_args__ = (Index("ix_review_session_expires", "expires_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[int] = mapped_column(BigInteger)
    key_name: Mapped[str] = mapped_column(String(100))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_active_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    streak_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """Start of the current stretch of reviewing without a long pause (break reminders)."""


class EntryReviewRow(Base):
    """What reviewers said about one bank entry: false positives counted against it, and
    whether that count disabled it pending a curator's look."""

    __tablename__ = "entry_reviews"

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("bank_entries.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    false_positives: Mapped[int] = mapped_column(Integer, default=0)
    last_false_positive_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """Set while the entry is disabled pending a curator's look; cleared on re-enable."""


__all__ = [
    "BANK_KINDS",
    "Base",
    "CaseItemRow",
    "CaseRow",
    "DecisionRow",
    "EntryReviewRow",
    "RevealRow",
    "ReviewSessionRow",
]
