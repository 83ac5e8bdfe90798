"""Tables of Amparo-to-Amparo federation (on the shared declarative ``Base``; migration 0010).

``feeds``: a bank published to partners. ``feed_grants``: which partner key may read which
feed, the partner's pinned public key for its opinions, and how far it acknowledged the
change log. ``feed_opinions``: the latest verdict each partner sent about each entry.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from amparo.store.models import Base, BigId

__all__ = ["Base", "FeedGrantRow", "FeedOpinionRow", "FeedRow"]


class FeedRow(Base):
    """A published bank."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class FeedGrantRow(Base):
    """One partner key's right to read a feed. Revoking keeps the row (``revoked_at``);
    granting again re-opens it."""

    __tablename__ = "feed_grants"
    __table_args__ = (UniqueConstraint("feed_id", "key_name", name="uq_feed_grant"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    key_name: Mapped[str] = mapped_column(String(100))
    partner_public_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    """PEM of the partner's Ed25519 feed key: its opinions must verify with it."""
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ack_cursor: Mapped[str | None] = mapped_column(String(50), nullable=True)
    acked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class FeedOpinionRow(Base):
    """A partner's latest verdict on an entry of a feed (a later opinion replaces it)."""

    __tablename__ = "feed_opinions"
    __table_args__ = (
        UniqueConstraint("feed_id", "entry_id", "key_name", name="uq_feed_opinion"),
        Index("ix_feed_opinion_entry", "entry_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(BigInteger)
    key_name: Mapped[str] = mapped_column(String(100))
    partner: Mapped[str] = mapped_column(String(200))
    """The partner's organisation id, as its signed opinion names it."""
    verdict: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[str] = mapped_column(String(40))
    """When the partner's reviewer decided (ISO 8601, as signed)."""
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    signature: Mapped[str | None] = mapped_column(Text, nullable=True)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
