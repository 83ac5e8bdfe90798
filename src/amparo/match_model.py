"""What matching takes and gives: a query's signals, the matches found and how each was
found. Plain data (no storage, no index): the matcher (:mod:`amparo.matching`) fills it, and
the shells, rules, reports and reviewers read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from amparo.signals.pdq import DIHEDRAL_NAMES

if TYPE_CHECKING:
    from amparo.video_matching import VideoMatchDetail

PATHS = ("plain", "trimmed", "variant", "dihedral")
"""How a match was found (docs/detection.md), plainest first: ``plain`` the query's own PDQ
or digest; ``trimmed`` the query's PDQ with borders or bars trimmed; ``variant`` a stored
crop (or trim) of media a curator added; ``dihedral`` a mirrored or rotated query. When
several find the same entry at the same distance, the plainest is reported."""
RANK = {p: i for i, p in enumerate(PATHS)}
MIRROR = "flipy"
"""The dihedral transform of a left-right mirror: PDQ names the flips by their axis, so a
mirror is a flip about the vertical (y) axis, ``flipy`` (the reference ``dih/`` photos agree).
Matched in every bank with ``match_mirrored``; the other transforms only in banks with
``dihedral``."""
MIRROR_INDEX = DIHEDRAL_NAMES.index(MIRROR) - 1
"""Where the mirror is in a query's ``pdq_dihedral`` (which leaves out ``original``)."""


@dataclass(frozen=True)
class Match:
    """One bank entry matched by one query signal. Carries no hash from the bank itself:
    a matcher learns what matched and how closely, never a list's contents."""

    bank: str
    entry_id: int
    signal_type: str
    distance: int
    category: str | None = None
    tags: tuple[str, ...] = ()
    source_id: str | None = None
    transform: str | None = None
    """For dihedral PDQ matches: which rotation/flip of the query matched."""
    path: str = "plain"
    """How the match was found: one of :data:`PATHS`. Scan reports call it ``match_path``
    (their ``path`` is the file's)."""
    variant: str | None = None
    """For ``variant`` matches: which stored variant of the entry matched."""
    video: VideoMatchDetail | None = None
    """For vPDQ matches: shares of frames in common and the matching time ranges."""

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "bank": self.bank,
            "entry_id": self.entry_id,
            "signal_type": self.signal_type,
            "distance": self.distance,
            "category": self.category,
            "path": self.path,
        }
        if self.variant is not None:
            data["variant"] = self.variant
        if self.tags:
            data["tags"] = list(self.tags)
        if self.source_id is not None:
            data["source_id"] = self.source_id
        if self.transform is not None:
            data["transform"] = self.transform
        if self.video is not None:
            data["video"] = self.video.to_json()
        return data


@dataclass
class Query:
    """The signals of one piece of content to look up."""

    signals: dict[str, str]
    """Signal type -> canonical value."""
    pdq_quality: int | None = None
    pdq_dihedral: list[str] = field(default_factory=list)
    """The seven non-identity dihedral PDQ hashes (``DIHEDRAL_NAMES[1:]`` order), if any."""
    pdq_mirror: str | None = None
    """The PDQ of the mirrored picture (when not already in ``pdq_dihedral``)."""
    pdq_trimmed: str | None = None
    """The PDQ of the picture with borders or bars trimmed; None when nothing was."""
    pdq_trimmed_mirror: str | None = None


class Hit(NamedTuple):
    """One index hit of one query: the stored row it found (an entry or a variant of one),
    how far, and which form of the query found it."""

    entry_id: int
    signal_type: str
    distance: int
    transform: str | None = None
    trimmed: bool = False


@dataclass
class QueryResult:
    matches: list[Match]
    pdq_skipped: str | None = None
    """Why the PDQ hash was not used (low quality), if it was not."""
    benign: list[Match] = field(default_factory=list)
    """Matches in negative (known-benign) banks. When there are any, ``matches`` is empty:
    known-benign content is never a find."""
    suppressed: list[Match] = field(default_factory=list)
    """Positive-bank matches withheld because the query also matched a negative bank."""
