"""Tables of the audit and reports work (on the shared declarative ``Base``; migration 0007).

``audit_checkpoints``: signed statements "the audit chain had this hash at this entry".
``reports``: one report through its life, queued (a draft) -> built -> submitted / retracted.
``report_submissions``: how far the submission of a report to a hotline got, so a submission
that failed half way resumes where it stopped instead of filing a second report.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from amparo.store.models import Base, BigId

__all__ = ["AuditCheckpointRow", "Base", "ReportRow", "ReportSubmissionRow"]


class AuditCheckpointRow(Base):
    """An Ed25519 signature over (entry seq, entry id, chain hash, time)."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (Index("ix_audit_checkpoint_seq", "seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the raw public key (hex): which key signed."""
    signature: Mapped[str] = mapped_column(Text)
    """Base64 of the 64-byte Ed25519 signature."""


class ReportRow(Base):
    """A report about one case. Holds hashes, names and classifications, never media."""

    __tablename__ = "reports"
    __table_args__ = (Index("ix_report_case", "case_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(BigInteger)
    rule: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    """``queued`` (a draft), ``built``, ``submitted`` or ``retracted``."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
    built_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    built_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    content: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The report in Amparo's generic JSON form (``amparo.reports.model``), once built."""


class ReportSubmissionRow(Base):
    """Progress of one report's submission: each step is recorded as soon as it succeeds."""

    __tablename__ = "report_submissions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), unique=True
    )
    destination: Mapped[str] = mapped_column(String(50))
    environment: Mapped[str] = mapped_column(String(20))
    base_url: Mapped[str] = mapped_column(Text)
    remote_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    """The hotline's report id, recorded the moment ``submit`` returns it."""
    files: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: item id -> {"file_id": ..., "fileinfo": true} as uploads and file details land."""
    status: Mapped[str] = mapped_column(String(20))
    """``started``, ``open`` (report filed, files pending), ``finished``, ``retracted``."""
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    retracted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """Who is submitting now: two ``reports submit`` of one draft must not both call the
    hotline. Held under a lease (``claimed_until``) so a submitter that died lets go."""
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
