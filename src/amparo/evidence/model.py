"""The evidence store's records: a preserved item as everyone reads it, and what preserving
a new one writes.

Plain dataclasses, no storage: the repository in ``amparo.store.evidence`` builds
:class:`EvidenceItem` from its row (the one mapping of the record) and writes
:class:`NewEvidence`; the service, the API and the CLI read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class EvidenceItem:
    id: int
    sha256: str
    md5: str
    size: int
    mime: str | None
    file_name: str | None
    source: dict[str, Any]
    reason: str
    """Why it was kept: ``rule:<name>``, ``review``, ``decision:confirm``, ``manual``..."""
    case_id: int | None
    preserved_at: datetime
    expires_at: datetime | None
    """When purge may delete it; None: kept until discarded by hand."""
    legal_hold: bool
    purged_at: datetime | None
    matches: tuple[dict[str, Any], ...] = ()
    """The matches that caused preservation (bank, entry_id, signal_type, distance, category)."""
    media_kind: str | None = None
    """``photo``, ``video`` or None when not known."""
    hold_reason: str | None = None
    purge_reason: str | None = None
    """``expired`` or ``discarded: <why>`` once purged."""
    preserved_by: str = ""
    sightings: int = 1
    """How many times it was asked to be preserved (the first time included)."""
    uuid: str = ""
    """Names its encrypted blob (``backends.blob_key``) and is bound into its encryption."""
    format_version: int = 0
    blob_size: int = 0
    kek_id: str | None = None
    """The key-encryption key that wraps its data key (None once purged)."""
    wrapped_key: bytes | None = field(default=None, repr=False)
    """Its data key, wrapped: useless without the keyring, destroyed on purge. Never part
    of what :meth:`as_dict` or the API show."""

    @property
    def held(self) -> bool:
        """Whether the content is still held (not purged or discarded)."""
        return self.purged_at is None

    def as_dict(self) -> dict[str, Any]:
        """Metadata as JSON-ready values (no content, no key material)."""
        return {
            "id": self.id,
            "sha256": self.sha256,
            "md5": self.md5,
            "size": self.size,
            "mime": self.mime,
            "media_kind": self.media_kind,
            "file_name": self.file_name,
            "source": self.source,
            "reason": self.reason,
            "case_id": self.case_id,
            "matches": list(self.matches),
            "preserved_at": self.preserved_at.isoformat(),
            "preserved_by": self.preserved_by,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "legal_hold": self.legal_hold,
            "hold_reason": self.hold_reason,
            "purged_at": self.purged_at.isoformat() if self.purged_at else None,
            "purge_reason": self.purge_reason,
            "sightings": self.sightings,
        }


@dataclass(frozen=True)
class NewEvidence:
    """What preserving new content writes (its first sighting comes from it too)."""

    uuid: str
    sha256: str
    md5: str
    size: int
    mime: str | None
    media_kind: str | None
    file_name: str | None
    source: dict[str, Any]
    matches: list[dict[str, Any]]
    reason: str
    case_id: int | None
    actor: str
    at: datetime
    expires_at: datetime | None
    format_version: int
    blob_size: int
    kek_id: str
    wrapped_key: bytes = field(repr=False)


class PurgeHook(Protocol):
    """Run by every purge (see :meth:`EvidenceStore.on_purge`)."""

    def __call__(self, now: datetime, *, actor: str, dry_run: bool) -> list[int]: ...
