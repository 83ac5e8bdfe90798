"""Bank and entry records as plain data: what import formats produce and export formats take,
and what the bank repository returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from amparo.clock import utc_now


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
    provenance: dict[str, Any] | None = None
    """Where the entry came from and who vouches for it
    (:class:`amparo.exchanges.model.Provenance` as JSON); survives re-sharing."""
    variant: str | None = None
    """Set on the PDQ hashes of crops (or a trim) of media added to a bank: which variant
    this is of the record's media (docs/detection.md). Never read from or written to a
    hash list."""


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


@dataclass(frozen=True)
class EntryView:
    """A stored entry with its bank's name (what a match reports)."""

    id: int
    bank_id: int
    bank_name: str
    signal_type: str
    signal: str
    category: str | None
    tags: list[str]
    source_id: str | None
    note: str | None
    enabled: bool
    removed: bool
    added_at: datetime
    disabled_until: datetime | None = None
    """Not matched before this time (UTC), when set."""
    provenance: dict[str, Any] | None = None
    """Where the entry came from (:class:`amparo.exchanges.model.Provenance` as JSON)."""
    variant_of: int | None = None
    """For a variant (a crop or trim of media added to a bank, docs/detection.md): the id
    of the entry it is a variant of, whose bank, category and state it matches under."""
    variant: str | None = None
    """For a variant: which one (``crop5-left``, ``crop10-centre``, ``trimmed``...)."""

    def paused(self, now: datetime | None = None) -> bool:
        """Whether the entry is disabled until a time that has not come yet."""
        return self.disabled_until is not None and self.disabled_until > (now or utc_now())
