"""What the acting layers share about a find: the content that matched and where it came from.

The matcher says *what* matched; these types add *which content* (its hashes, never the media
itself) and *where it was seen*, so that rules (``actions``), cases (``review``), preserved
evidence (``evidence``) and reports (``reports``) all speak about the same thing.
Nothing here describes a person beyond the identifiers a platform supplies for its own accounts
and uploads: matching is about content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from amparo.matching import Match

SOURCE_KINDS = ("api", "scan", "cli", "retro")


@dataclass(frozen=True)
class Source:
    """Where content was seen. Every field is optional: callers say what they know."""

    kind: str = "api"
    """``api`` (a platform's upload check), ``scan`` (a file under a scanned path), ``cli``, or
    ``retro`` (content checked earlier that matched an entry added since: retroactive matching
    keeps the original sighting's other fields)."""
    account_id: str | None = None
    """The platform's own id for the uploading account (opaque to Amparo)."""
    upload_id: str | None = None
    """The platform's own id for the upload or post."""
    url: str | None = None
    """Where the content was fetched from or is hosted."""
    path: str | None = None
    """A scanned file's path (inside an archive: ``archive.zip!member``)."""
    scan_id: str | None = None
    """The scan (its journal/run id) that found the file."""
    file_name: str | None = None
    """The original file name, as uploaded or on disk."""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @property
    def group_key(self) -> str | None:
        """What groups finds "by source" into one case: the account, else the scan."""
        if self.account_id:
            return f"account:{self.account_id}"
        if self.scan_id:
            return f"scan:{self.scan_id}"
        return None


@dataclass(frozen=True)
class MatchedContent:
    """One piece of content that matched one or more bank entries."""

    sha256: str
    """SHA-256 of the content's bytes (lowercase hex): what cases group by and evidence keys on."""
    matches: tuple[Match, ...]
    source: Source = field(default_factory=Source)
    md5: str | None = None
    size: int | None = None
    media_kind: str | None = None
    """``photo``, ``video`` or None when not known (a signals-only lookup)."""
    mime: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted({m.category for m in self.matches if m.category}))

    @property
    def best_distance(self) -> int | None:
        return min((m.distance for m in self.matches), default=None)
