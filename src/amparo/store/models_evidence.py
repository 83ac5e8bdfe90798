"""Evidence items and their sightings: the tables (the repository is ``amparo.store.evidence``).

A row describes one preserved piece of content (hashes, size, where it was seen, why it was
kept, retention and hold) and holds its *wrapped* data key; the encrypted content lives in a
blob backend under the row's ``uuid``. Purging keeps the row as the record and destroys the
wrapped key, so any copy of the blob that survives elsewhere can no longer be decrypted.
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
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from amparo.store.models import Base, BigId

__all__ = ["Base", "EvidenceRow", "EvidenceSightingRow"]


class EvidenceRow(Base):
    """One preserved item. ``live_sha256`` equals ``sha256`` while the content is held and
    is NULL once purged or discarded: its unique constraint keeps one live copy per content
    (NULLs never collide), while purged records of the same content may accumulate."""

    __tablename__ = "evidence_items"
    __table_args__ = (
        Index("ix_evidence_sha256", "sha256"),
        Index("ix_evidence_expires", "expires_at"),
        Index("ix_evidence_case", "case_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(32), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    live_sha256: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    md5: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    mime: Mapped[str | None] = mapped_column(String(100), nullable=True)
    media_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    file_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str] = mapped_column(Text, default="{}")
    matches: Mapped[str] = mapped_column(Text, default="[]")
    reason: Mapped[str] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    preserved_by: Mapped[str] = mapped_column(String(200))
    preserved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    hold_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    purge_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    format_version: Mapped[int] = mapped_column(Integer)
    blob_size: Mapped[int] = mapped_column(BigInteger)
    kek_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class EvidenceSightingRow(Base):
    """Each request to preserve an item (the first included): when, why, from where."""

    __tablename__ = "evidence_sightings"
    __table_args__ = (Index("ix_evidence_sighting_item", "item_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(BigId, ForeignKey("evidence_items.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    source: Mapped[str] = mapped_column(Text, default="{}")
    matches: Mapped[str] = mapped_column(Text, default="[]")
