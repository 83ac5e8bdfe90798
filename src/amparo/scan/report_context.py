"""What a scan report says about the scan itself: the tool's version, who ran it, the settings
that decide what matches, and where each bank's hashes came from.

A report handed to a prosecutor or a partner agency must let them judge a match without the
installation that made it: which version, which thresholds, which lists (and who supplied
them, when they were imported, how many entries they held). This is gathered once, when the
scan starts, into plain data on :class:`~amparo.scan.result.ScanResult`, so the report writers
stay pure functions of the result.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from amparo.app import Amparo

UNKNOWN_OPERATOR = "unknown"


@dataclass(frozen=True)
class BankProvenance:
    """One bank a scan looked in: its provenance and the matching settings it adds."""

    name: str
    source: str = ""
    supplier: str = ""
    imported_at: datetime | None = None
    """When entries were last imported from a list (None: added one by one, never imported)."""
    entry_count: int = 0
    kind: str = "positive"
    """``positive`` (known material) or ``negative`` (known-benign: suppresses matches)."""
    pdq_threshold: int = 31
    """The PDQ distance this bank matches at (its own, else the default setting)."""
    dihedral: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "source": self.source,
            "supplier": self.supplier,
            "imported_at": _iso(self.imported_at),
            "entry_count": self.entry_count,
            "kind": self.kind,
            "pdq_threshold": self.pdq_threshold,
            "dihedral": self.dihedral,
        }


@dataclass(frozen=True)
class ScanContext:
    """The facts a report states about how the scan was made (see the module docstring)."""

    version: str
    operator: str = UNKNOWN_OPERATOR
    pdq_threshold: int = 31
    """The default PDQ distance (banks may set their own: :attr:`BankProvenance.pdq_threshold`)."""
    pdq_min_quality: int = 50
    dihedral: bool = False
    """Whether rotated and mirrored copies were hashed (some bank asked for it)."""
    video_query_share: float = 0.8
    video_bank_share: float = 0.8
    video_clip: bool = False
    video_sample_fps: float = 1.0
    banks: tuple[BankProvenance, ...] = field(default_factory=tuple)

    def settings(self) -> dict[str, object]:
        """The settings that affect what matches, by their setting names."""
        return {
            "pdq_threshold": self.pdq_threshold,
            "pdq_min_quality": self.pdq_min_quality,
            "dihedral": self.dihedral,
            "video_query_share": self.video_query_share,
            "video_bank_share": self.video_bank_share,
            "video_clip": self.video_clip,
            "video_sample_fps": self.video_sample_fps,
        }

    def to_json(self) -> dict[str, object]:
        return {
            "tool": "amparo",
            "tool_version": self.version,
            "operator": self.operator,
            "settings": self.settings(),
            "bank_provenance": [b.to_json() for b in self.banks],
        }


def default_operator() -> str:
    """The operating-system user running the scan (``--operator`` overrides it)."""
    try:
        return getpass.getuser() or UNKNOWN_OPERATOR
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        return UNKNOWN_OPERATOR


def scan_context(
    amparo: Amparo, banks: Sequence[str] | None, operator: str | None = None
) -> ScanContext:
    """The context of a scan of ``banks`` (None: every enabled bank) by ``operator``.

    Lists the enabled banks a lookup uses: the chosen ones (or all) and, always, the enabled
    known-benign ones, since those can withhold a match."""
    from amparo import __version__

    settings = amparo.settings
    chosen = set(banks) if banks else None
    used = [
        b
        for b in amparo.banks.list(with_counts=True)
        if b.enabled and (chosen is None or b.name in chosen or b.kind == "negative")
    ]
    return ScanContext(
        version=__version__,
        operator=(operator or "").strip() or default_operator(),
        pdq_threshold=settings.pdq_threshold,
        pdq_min_quality=settings.pdq_min_quality,
        dihedral=any(b.dihedral for b in used if chosen is None or b.name in chosen),
        video_query_share=settings.video_query_share,
        video_bank_share=settings.video_bank_share,
        video_clip=settings.video_clip,
        video_sample_fps=settings.video_sample_fps,
        banks=tuple(
            BankProvenance(
                name=b.name,
                source=b.source,
                supplier=b.supplier,
                imported_at=b.imported_at,
                entry_count=b.entry_count,
                kind=b.kind,
                pdq_threshold=(
                    b.pdq_threshold if b.pdq_threshold is not None else settings.pdq_threshold
                ),
                dihedral=b.dihedral,
            )
            for b in used
        ),
    )


def _iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is None:  # the store keeps UTC without a zone
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds")
