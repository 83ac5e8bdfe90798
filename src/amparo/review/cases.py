"""Cases: matches grouped by content and by source, ordered by priority, decided by reviewers.

The types here are the contract the reports and web layers build on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from amparo.events import MatchedContent
from amparo.matching import Match

if TYPE_CHECKING:
    from amparo.app import Amparo

DECISION_KINDS = ("confirm", "false_positive", "escalate")
"""What a reviewer can decide about one item."""
CLASSIFICATIONS = ("A1", "A2", "B1", "B2")
"""The Tech Coalition industry classification a confirm carries (A: prepubescent, B: pubescent;
1: sex act, 2: lascivious exhibition)."""


@dataclass(frozen=True)
class Decision:
    kind: str
    """One of ``DECISION_KINDS``."""
    reviewer: str
    """The reviewer's key name."""
    at: datetime
    classification: str | None = None
    """One of ``CLASSIFICATIONS``; required for ``confirm``."""
    annotations: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class CaseItem:
    """One piece of content in a case (one SHA-256), with every match and sighting of it."""

    id: int
    case_id: int
    sha256: str
    md5: str | None
    size: int | None
    media_kind: str | None
    file_name: str | None
    source: dict[str, Any]
    """The first sighting's ``Source.as_dict()``."""
    matches: tuple[Match, ...]
    evidence_id: int | None
    """The preserved copy in the evidence store, if any."""
    first_seen: datetime
    last_seen: datetime
    sightings: int
    viewed: bool
    """A reviewer revealed the media (CyberTipline ``fileViewedByEsp``)."""
    decision: Decision | None
    """The latest decision on this item; None while it waits for review."""


@dataclass(frozen=True)
class CaseView:
    id: int
    group: str
    """What groups its items: ``content:<sha256>``, ``account:<id>`` or ``scan:<id>``."""
    status: str
    """``open`` (an item waits for review), ``escalated``, or ``decided``."""
    priority: int
    """Higher is more urgent (category, distance, age)."""
    opened_at: datetime
    updated_at: datetime
    items: tuple[CaseItem, ...]
    rule: str | None = None
    """The rule that opened the case (None: opened by hand)."""

    @property
    def confirmed_items(self) -> tuple[CaseItem, ...]:
        return tuple(i for i in self.items if i.decision and i.decision.kind == "confirm")


class CaseService:
    def __init__(self, amparo: Amparo) -> None:
        self.amparo = amparo

    def open_or_extend(
        self,
        content: MatchedContent,
        *,
        evidence_id: int | None = None,
        rule: str | None = None,
        actor: str = "local",
    ) -> int:
        """Open a case for ``content`` or add it to the open case of the same content/source;
        return the case id."""
        raise NotImplementedError

    def get(self, case_id: int) -> CaseView:
        raise NotImplementedError
