"""The evidence store: envelope-encrypted items with retention, legal hold and purge.

The types here are the contract the review, actions and reports layers build on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amparo.events import MatchedContent

if TYPE_CHECKING:
    from amparo.app import Amparo


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
    legal_hold: bool
    purged_at: datetime | None
    matches: tuple[dict[str, Any], ...] = ()
    """The matches that caused preservation (bank, entry_id, signal_type, distance, category)."""


class EvidenceStore:
    def __init__(self, amparo: Amparo) -> None:
        self.amparo = amparo

    def preserve(
        self,
        data: bytes | Path,
        *,
        content: MatchedContent | None = None,
        reason: str,
        case_id: int | None = None,
        actor: str = "local",
    ) -> EvidenceItem:
        """Encrypt and keep ``data``; returns once it is durable (idempotent per SHA-256:
        the same content is stored once, each request recorded)."""
        raise NotImplementedError

    def get(self, item_id: int) -> EvidenceItem:
        raise NotImplementedError

    def read(self, item_id: int, *, actor: str) -> bytes:
        """Decrypt and integrity-check one item; every read is audit-logged."""
        raise NotImplementedError
