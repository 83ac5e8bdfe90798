"""Tables of the hotline pipeline (migration 0012).

``hotline_reports``: one row per reported URL (normalised) and where its handling stands;
``open_key`` is the URL's key while the report is open, so the database keeps one open report
per URL (a later report of a closed or removed URL starts a new one).
``hotline_submissions``: each report of it (public page, partner API, CLI).
``hotline_items``: media the crawl found behind it (hashes and match results, never media).
``hotline_notices``: every notice, repeat, escalation and forward sent or tried.
``hotline_reveals``: analysts' reveals of an item's clear media (exposure, with review's).
``hotline_rdap_cache``: abuse contacts RDAP answered, per network, for a while.
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

from amparo.store.models import Base, BigId

__all__ = [
    "Base",
    "HotlineItemRow",
    "HotlineNoticeRow",
    "HotlineReportRow",
    "HotlineRevealRow",
    "HotlineSubmissionRow",
    "RdapCacheRow",
]

_TZ = DateTime(timezone=True)


class HotlineReportRow(Base):
    __tablename__ = "hotline_reports"
    __table_args__ = (
        UniqueConstraint("open_key", name="uq_hotline_report_open"),
        Index("ix_hotline_report_status", "status"),
        Index("ix_hotline_report_url_key", "url_key"),
        Index("ix_hotline_report_host", "host"),
        Index("ix_hotline_report_crawl", "next_crawl_at"),
        Index("ix_hotline_report_notice", "next_notice_at"),
        Index("ix_hotline_report_recheck", "next_recheck_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the normalised URL."""
    open_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    host: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime] = mapped_column(_TZ)
    updated_at: Mapped[datetime] = mapped_column(_TZ)
    submissions: Mapped[int] = mapped_column(Integer, default=1)
    crawled_at: Mapped[datetime | None] = mapped_column(_TZ, nullable=True)
    crawl_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    crawl_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_crawl_at: Mapped[datetime | None] = mapped_column(_TZ, nullable=True)
    attribution: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON: ``Attribution.to_json()``."""
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    """The attribution's country (a column of its own: the figures group by it)."""
    provider: Mapped[str | None] = mapped_column(String(255), nullable=True)
    first_notice_at: Mapped[datetime | None] = mapped_column(_TZ, nullable=True)
    last_notice_at: Mapped[datetime | None] = mapped_column(_TZ, nullable=True)
    notices_sent: Mapped[int] = mapped_column(Integer, default=0)
    next_notice_at: Mapped[datetime | None] = mapped_column(_TZ, nullable=True)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    next_recheck_at: Mapped[datetime | None] = mapped_column(_TZ, nullable=True)
    recheck_attempts: Mapped[int] = mapped_column(Integer, default=0)
    removed_at: Mapped[datetime | None] = mapped_column(_TZ, nullable=True)
    reappearances: Mapped[int] = mapped_column(Integer, default=0)
    media_urls: Mapped[str] = mapped_column(Text, default="[]")
    """JSON: the media URLs the crawl extracted (the page's HTML is not kept)."""


class HotlineSubmissionRow(Base):
    __tablename__ = "hotline_submissions"
    __table_args__ = (Index("ix_hotline_submission_report", "report_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("hotline_reports.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(_TZ)
    channel: Mapped[str] = mapped_column(String(8))
    reporter: Mapped[str | None] = mapped_column(String(200), nullable=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    contact: Mapped[str | None] = mapped_column(String(320), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)


class HotlineItemRow(Base):
    __tablename__ = "hotline_items"
    __table_args__ = (
        UniqueConstraint("report_id", "sha256", name="uq_hotline_item_content"),
        Index("ix_hotline_item_status", "status"),
        Index("ix_hotline_item_sha256", "sha256"),
        Index("ix_hotline_item_evidence", "evidence_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("hotline_reports.id", ondelete="CASCADE"))
    media_url: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    pdq: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    mime: Mapped[str | None] = mapped_column(String(100), nullable=True)
    media_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    matches: Mapped[str] = mapped_column(Text, default="[]")
    evidence_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    assessment: Mapped[str | None] = mapped_column(String(16), nullable=True)
    jurisdiction: Mapped[str | None] = mapped_column(String(8), nullable=True)
    assessed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    assessed_at: Mapped[datetime | None] = mapped_column(_TZ, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    online: Mapped[bool] = mapped_column(Boolean, default=True)
    removed_at: Mapped[datetime | None] = mapped_column(_TZ, nullable=True)
    reappearances: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[datetime] = mapped_column(_TZ)
    last_seen: Mapped[datetime] = mapped_column(_TZ)


class HotlineNoticeRow(Base):
    __tablename__ = "hotline_notices"
    __table_args__ = (Index("ix_hotline_notice_report", "report_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("hotline_reports.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(_TZ)
    language: Mapped[str] = mapped_column(String(8))
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")


class HotlineRevealRow(Base):
    """An analyst deliberately looked at a hotline item's clear media; counted with the
    review reveals against the same daily exposure limit."""

    __tablename__ = "hotline_reveals"
    __table_args__ = (Index("ix_hotline_reveal_reviewer_at", "reviewer", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("hotline_items.id", ondelete="CASCADE"))
    reviewer: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(_TZ)


class RdapCacheRow(Base):
    __tablename__ = "hotline_rdap_cache"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    """What was asked: ``ip:<address>`` or ``asn:<number>``."""
    answer: Mapped[str] = mapped_column(Text)
    """JSON: the abuse contact and network RDAP gave (or that it had none)."""
    fetched_at: Mapped[datetime] = mapped_column(_TZ)
