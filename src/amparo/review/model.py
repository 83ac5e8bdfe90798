"""The review work's vocabulary and records: cases and their items, decisions, exposure,
entries disabled after false positives, reviewer sign-ins.

Plain dataclasses, no storage: the repositories in ``amparo.store.review`` build these from
their rows (the one mapping of each record), the services in ``amparo.review`` decide with
them, and the reports and web layers read them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from amparo.errors import InputError
from amparo.matching import PATHS, Match
from amparo.video_matching import VideoMatchDetail

DECISION_KINDS = ("confirm", "false_positive", "escalate")
"""What a reviewer can decide about one item."""
CLASSIFICATIONS = ("A1", "A2", "B1", "B2")
"""The Tech Coalition industry classification a confirm carries (A: prepubescent, B: pubescent;
1: sex act, 2: lascivious exhibition)."""
QUEUE_STATUSES: dict[str, tuple[str, ...]] = {
    "waiting": ("open", "escalated"),
    "open": ("open",),
    "escalated": ("escalated",),
    "decided": ("decided",),
    "all": ("open", "escalated", "decided"),
}
"""Queue filters: which case statuses each one shows."""
OPEN_STATUSES = QUEUE_STATUSES["waiting"]
"""Case statuses to which new finds are added."""
MAX_NOTE = 4000
MAX_ANNOTATIONS = 20
MAX_ANNOTATION = 100

MatchList = list[dict[str, Any]]
"""Matches as stored: ``Match.to_json()`` of each."""
Merge = Callable[[MatchList, MatchList], tuple[MatchList, int]]
"""``(existing matches, new matches) -> (merged matches, item priority)``."""


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
    id: int | None = None
    """Its row (None for a decision not stored, e.g. one a test builds)."""


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
    status: str = "pending"
    """``pending``, ``escalated`` or ``decided``."""
    priority: int = 0
    mime: str | None = None

    @property
    def entry_ids(self) -> list[int]:
        """The bank entries it matched, each once, sorted (what a false positive counts
        against)."""
        return sorted({m.entry_id for m in self.matches})


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

    @property
    def waiting(self) -> int:
        """How many of its items still wait for a decision (pending or escalated)."""
        return sum(1 for i in self.items if i.status != "decided")

    @property
    def categories(self) -> list[str]:
        """The categories its items matched, sorted."""
        return sorted({m.category for i in self.items for m in i.matches if m.category})


@dataclass(frozen=True)
class NewItem:
    """A sighting of content, as the case service hands it to the repository."""

    sha256: str
    md5: str | None
    size: int | None
    media_kind: str | None
    mime: str | None
    file_name: str | None
    source: dict[str, Any]
    matches: MatchList
    evidence_id: int | None
    at: datetime


@dataclass(frozen=True)
class Opened:
    case_id: int
    item_id: int
    outcome: str
    """``opened`` (a new case), ``added`` (a new item in an open case) or ``extended`` (one
    more sighting of content an open case holds)."""


@dataclass
class DecisionResult:
    case_id: int
    decision: Decision
    """The decision as stored."""
    previous: str | None
    """The item's decision kind before this one (None: undecided)."""
    fp_counts: dict[int, int] = field(default_factory=dict)
    """Entry id -> false positives counted against it, when this decision counted them."""


@dataclass
class UndoResult:
    case_id: int
    undone: Decision
    """The decision taken back."""
    restored: str | None
    """The item's decision kind now (None: it waits for review again)."""
    fp_uncounted: list[int] = field(default_factory=list)
    """Entry ids whose false-positive count went down by one."""


@dataclass(frozen=True)
class DisabledEntry:
    """A bank entry disabled after repeated false positives, waiting for a curator."""

    entry_id: int
    bank: str
    signal_type: str
    category: str | None
    source_id: str | None
    false_positives: int
    disabled_at: datetime


@dataclass(frozen=True)
class Exposure:
    """How much clear media a reviewer has seen today (UTC)."""

    reviewer: str
    revealed_today: int
    daily_limit: int

    @property
    def remaining(self) -> int:
        return max(0, self.daily_limit - self.revealed_today)


@dataclass(frozen=True)
class Reveal:
    item_id: int
    until: datetime
    """The clear rendition is served until then."""
    exposure: Exposure


@dataclass(frozen=True)
class SignIn:
    """A reviewer's browser sign-in as the database keeps it (the cookie's token only as its
    SHA-256); ``amparo.review.sessions.WebSession`` is what a request sees of it."""

    token_hash: str
    key_id: int
    key_name: str
    csrf: str
    created_at: datetime
    expires_at: datetime
    last_active_at: datetime
    streak_started_at: datetime
    """Start of the current stretch of reviewing without a long pause (break reminders)."""


def match_of(data: dict[str, Any]) -> Match:
    """A stored match (``Match.to_json()``) back as a :class:`Match`. Matches stored before
    they said how they were found read as ``dihedral`` when they name a transform, else
    ``plain`` (all there was then)."""
    transform = data.get("transform")
    path = data.get("path")
    if path not in PATHS:
        path = "dihedral" if transform is not None else "plain"
    return Match(
        bank=str(data.get("bank")),
        entry_id=int(data.get("entry_id") or 0),
        signal_type=str(data.get("signal_type")),
        distance=int(data.get("distance") or 0),
        category=data.get("category"),
        tags=tuple(data.get("tags") or ()),
        source_id=data.get("source_id"),
        transform=transform,
        path=path,
        variant=data.get("variant"),
        video=VideoMatchDetail.from_json(data["video"]) if data.get("video") else None,
    )


def check_statuses(status: str) -> tuple[str, ...]:
    """The case statuses a queue filter shows; InputError for an unknown filter."""
    try:
        return QUEUE_STATUSES[status]
    except KeyError:
        raise InputError(
            f"unknown case status {status!r}", hint="use one of " + ", ".join(QUEUE_STATUSES)
        ) from None


def check_decision(kind: str, classification: str | None) -> tuple[str, str | None]:
    """A decision kind and classification, normalised; InputError when they do not fit."""
    kind = kind.strip().lower().replace("-", "_")
    if kind not in DECISION_KINDS:
        raise InputError(f"unknown decision {kind!r}", hint="use " + ", ".join(DECISION_KINDS))
    if classification is not None:
        classification = classification.strip().upper() or None
    valid = "one of " + ", ".join(CLASSIFICATIONS) + " (Tech Coalition industry scheme)"
    if classification is not None and classification not in CLASSIFICATIONS:
        raise InputError(f"{classification!r} is not a valid classification", hint="use " + valid)
    if kind == "confirm":
        if classification is None:
            raise InputError("a confirm needs a classification", hint=valid)
    elif classification is not None:
        raise InputError(
            f"only a confirm carries a classification, not {kind}",
            hint="leave the classification out",
        )
    return kind, classification


def check_annotations(annotations: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Annotations stripped, de-duplicated and within the limits."""
    clean: list[str] = []
    for raw in annotations:
        text = raw.strip()
        if not text:
            continue
        if len(text) > MAX_ANNOTATION:
            raise InputError(f"annotation {text[:20]!r}... is over {MAX_ANNOTATION} characters")
        if text not in clean:
            clean.append(text)
    if len(clean) > MAX_ANNOTATIONS:
        raise InputError(f"at most {MAX_ANNOTATIONS} annotations per decision")
    return tuple(clean)


def check_note(note: str | None) -> str | None:
    """A decision's note, stripped (None when empty); InputError when too long."""
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise InputError(f"the note is over {MAX_NOTE} characters", hint="shorten it")
    return note
