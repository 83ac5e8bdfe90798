"""Bank and entry records as plain data: what import formats produce and export formats take."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class EntryRecord:
    """One hash in a hash list, with its metadata. ``signal`` is in canonical text form."""

    signal_type: str
    signal: str
    category: str | None = None
    tags: list[str] = field(default_factory=list)
    source_id: str | None = None
    note: str | None = None
    enabled: bool = True


@dataclass
class BankInfo:
    """A named hash list and its provenance."""

    name: str
    description: str = ""
    source: str = ""
    supplier: str = ""
    terms: str = ""
    enabled: bool = True
    pdq_threshold: int | None = None
    """Per-bank PDQ distance; None means the configured default."""
    dihedral: bool = False
    """Also match rotated and mirrored copies (PDQ dihedral hashes)."""
    kind: str = "positive"
    """``positive``: known abuse material, a match is a find. ``negative``: known-benign
    content; a match suppresses the query's positive matches and is never a find itself."""
    id: int | None = None
    created_at: datetime | None = None
    imported_at: datetime | None = None
    entry_count: int = 0
