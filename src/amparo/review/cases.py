"""Cases: matches grouped by content and by source, ordered by priority, decided by reviewers.

The types here are the contract the reports and web layers build on.

Grouping (:meth:`CaseService.open_or_extend`):

1. content whose SHA-256 an open (or escalated) case already holds extends that item: one more
   sighting, new matches merged in;
2. otherwise, content with a source group (``Source.group_key``: the account, else the scan)
   joins the open case of that group as a new item;
3. otherwise a new case is opened for the content (group ``content:<sha256>``).

Order: see :mod:`amparo.review.priority`. Wellness: every reveal of clear media is logged and
counted per reviewer per UTC day, refused past ``review_daily_limit``. False-positive control:
a ``false_positive`` decision counts against every bank entry the item matched; an entry at
``review_fp_disable_after`` is disabled until a curator looks at it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from amparo.errors import (
    AmparoError,
    ExposureLimitError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedMediaError,
)
from amparo.events import MatchedContent
from amparo.matching import Match
from amparo.media.sniff import HEAD_BYTES, media_kind, sniff
from amparo.review import media
from amparo.review.media import Rendition
from amparo.review.priority import merge_matches
from amparo.store.repository import as_utc
from amparo.store.review import (
    DisabledEntry,
    NewItem,
    ReviewStore,
    StoredCase,
    StoredDecision,
    StoredItem,
)
from amparo.video_matching import VideoMatchDetail

if TYPE_CHECKING:
    from amparo.config import Settings
    from amparo.evidence import EvidenceStore
    from amparo.store import Store

log = logging.getLogger("amparo.review")

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
MAX_NOTE = 4000
MAX_ANNOTATIONS = 20
MAX_ANNOTATION = 100


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
    status: str = "pending"
    """``pending``, ``escalated`` or ``decided``."""
    priority: int = 0
    mime: str | None = None


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


class CaseService:
    """Cases, decisions, reveals and false-positive control over one installation."""

    def __init__(self, settings: Settings, store: Store, evidence: EvidenceStore) -> None:
        self.settings = settings
        self.store = store
        self.evidence = evidence
        self.records = ReviewStore(store)

    # -- cases ------------------------------------------------------------------------------

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
        if not content.matches:
            raise InputError("content with no matches is not a case", hint="match it first")
        new = NewItem(
            sha256=content.sha256.lower(),
            md5=content.md5,
            size=content.size,
            media_kind=content.media_kind,
            mime=content.mime,
            file_name=content.source.file_name,
            source=content.source.as_dict(),
            matches=[m.to_json() for m in content.matches],
            evidence_id=evidence_id,
            at=as_utc(content.at),
        )
        opened = self.records.open_or_extend(
            new, group_key=content.source.group_key, rule=rule, actor=actor, merge=merge_matches
        )
        return opened.case_id

    def get(self, case_id: int) -> CaseView:
        stored = self.records.case(case_id)
        if stored is None:
            raise NotFoundError(f"no case {case_id}", hint="see `amparo cases list`")
        return _case_view(stored)

    def item(self, item_id: int) -> CaseItem:
        stored = self.records.item(item_id)
        if stored is None:
            raise NotFoundError(f"no case item {item_id}", hint="see `amparo cases show CASE`")
        return _item_view(stored)

    def queue(self, status: str = "waiting", *, limit: int = 50, offset: int = 0) -> list[CaseView]:
        """Cases in priority order (most urgent, then longest waiting, first)."""
        return [
            _case_view(c)
            for c in self.records.queue(
                statuses=_statuses(status), limit=max(1, min(limit, 500)), offset=max(0, offset)
            )
        ]

    def count(self, status: str = "waiting") -> int:
        return self.records.count(_statuses(status))

    def history(self, item_id: int) -> list[Decision]:
        """Every decision on an item, oldest first."""
        self.item(item_id)
        return [_decision(d) for d in self.records.decisions(item_id)]

    def decide(
        self,
        item_id: int,
        kind: str,
        *,
        classification: str | None = None,
        annotations: tuple[str, ...] | list[str] = (),
        note: str | None = None,
        reviewer: str,
        actor: str | None = None,
    ) -> Decision:
        """Record a reviewer's decision on one item; audit-logged as ``case.decision``.

        ``confirm`` needs a ``classification`` (``A1``..``B2``); the others take none.
        ``false_positive`` counts against each bank entry the item matched, and disables an
        entry that reaches ``review_fp_disable_after`` pending a curator's look.
        ``actor`` (default: ``reviewer``) is how the audit log names the reviewer.
        """
        kind, classification = _check_decision(kind, classification)
        clean = _check_annotations(annotations)
        note = (note or "").strip() or None
        if note is not None and len(note) > MAX_NOTE:
            raise InputError(f"the note is over {MAX_NOTE} characters", hint="shorten it")
        item = self.item(item_id)
        now = datetime.now(UTC)
        result = self.records.decide(
            item_id,
            kind=kind,
            classification=classification,
            annotations=clean,
            note=note,
            reviewer=reviewer,
            at=now,
            count_against=sorted({m.entry_id for m in item.matches}),
            actor=actor or reviewer,
        )
        limit = self.settings.review_fp_disable_after
        if result.fp_counts and limit > 0:
            for entry_id, bank in self.records.entries_to_disable(list(result.fp_counts), limit):
                # Marked first: a crash in between leaves an entry listed for the curators
                # and still matching, never disabled where no one would look for it.
                self.records.mark_disabled(
                    entry_id,
                    now,
                    actor=actor or reviewer,
                    details={"false_positives": result.fp_counts[entry_id], "limit": limit},
                )
                self.store.set_entries_enabled(
                    bank, [], False, actor=actor or reviewer, ids=[entry_id]
                )
        # A false positive's preserved copy is not discarded here: the decision may be undone
        # within review_undo_seconds (a slip of one key must not destroy evidence), so the copy
        # goes once that grace has passed (discard_false_positives, run by evidence purge).
        return Decision(
            kind=kind,
            reviewer=reviewer,
            at=now,
            classification=classification,
            annotations=clean,
            note=note,
        )

    def undo_until(self, decision: Decision) -> datetime:
        """Until when ``decision`` may be undone (``review_undo_seconds`` after it)."""
        return as_utc(decision.at) + timedelta(seconds=self.settings.review_undo_seconds)

    def undo(self, item_id: int, *, reviewer: str, actor: str | None = None) -> Decision | None:
        """Take back ``reviewer``'s latest decision on an item within ``review_undo_seconds``
        of it (audit-logged as ``case.decision_undone``); a false positive that counted
        against bank entries is uncounted. Returns the item's decision now (None: it waits
        for review again). An entry that false positive disabled, now under
        ``review_fp_disable_after`` again, is enabled again."""
        item = self.item(item_id)
        since = datetime.now(UTC) - timedelta(seconds=self.settings.review_undo_seconds)
        undone = self.records.undo(
            item_id,
            reviewer=reviewer,
            since=since,
            count_against=sorted({m.entry_id for m in item.matches}),
            actor=actor or reviewer,
        )
        limit = self.settings.review_fp_disable_after
        if undone.fp_uncounted:
            uncounted = set(undone.fp_uncounted)
            for entry in self.records.disabled_entries():
                if entry.entry_id in uncounted and (limit <= 0 or entry.false_positives < limit):
                    # Enabled first: a crash in between leaves it listed for the curators.
                    self.store.set_entries_enabled(
                        entry.bank, [], True, actor=actor or reviewer, ids=[entry.entry_id]
                    )
                    self.records.mark_disabled(
                        entry.entry_id,
                        None,
                        actor=actor or reviewer,
                        details={"undone_false_positive": item_id},
                        reset_count=False,
                    )
        return self.item(item_id).decision

    def discard_false_positives(
        self, now: datetime | None = None, *, actor: str, dry_run: bool = False
    ) -> list[int]:
        """Discard the preserved copies of items decided false positives whose undo grace
        (``review_undo_seconds``) has passed by ``now``, each audit-logged by the evidence
        store as ``evidence.discard``; a copy another item still relies on, or on legal hold,
        is kept. Returns the evidence ids discarded (in a dry run: that would be)."""
        now = now or datetime.now(UTC)
        cutoff = now - timedelta(seconds=self.settings.review_undo_seconds)
        done: list[int] = []
        for item_id, evidence_id in self.records.false_positives_due(cutoff):
            if evidence_id in done:
                continue
            if self.records.evidence_still_needed(
                evidence_id, except_item=item_id, fp_before=cutoff
            ):
                continue  # another item relies on it, or its false positive may be undone
            if dry_run or self._discard_evidence(evidence_id, item_id, actor):
                done.append(evidence_id)
        return done

    def _discard_evidence(self, evidence_id: int, item_id: int, actor: str) -> bool:
        """Content judged a false positive is not kept: its preserved copy is discarded (the
        record of hashes stays). A failure here is logged and the copy kept."""
        try:
            self.evidence.discard(
                evidence_id, reason=f"false positive (case item {item_id})", actor=actor
            )
        except AmparoError as exc:
            log.warning("evidence item %s kept after a false positive: %s", evidence_id, exc)
            return False
        return True

    # -- wellness ---------------------------------------------------------------------------

    def exposure(self, reviewer: str) -> Exposure:
        """Items the reviewer revealed today (UTC) against the daily limit."""
        seen = self.records.revealed_items(reviewer, _day_start())
        return Exposure(reviewer, len(seen), self.settings.review_daily_limit)

    def record_reveal(self, item_id: int, reviewer: str, *, actor: str | None = None) -> Reveal:
        """Log that ``reviewer`` deliberately revealed an item's clear media (audit
        ``case.reveal``) and count it toward today's exposure. An item already revealed today
        does not count again; a new item past ``review_daily_limit`` is refused, and so is
        an item with no preserved copy (there is nothing to see)."""
        _preserved(self.item(item_id))
        since = _day_start()
        limit = self.settings.review_daily_limit
        now = datetime.now(UTC)
        # The limit is checked in the same transaction as the write (two tabs revealing at
        # once cannot both slip past it).
        count = self.records.reveal(
            item_id, reviewer, now, since=since, actor=actor or reviewer, limit=limit
        )
        if count is None:
            raise ExposureLimitError(
                f"you have looked at {limit} items today, the daily limit",
                hint="please take a break: decisions on blurred media are still possible, and "
                "a colleague can take over reveals; the count starts again at midnight UTC",
            )
        until = now + timedelta(seconds=self.settings.review_reveal_seconds)
        return Reveal(item_id, until, Exposure(reviewer, count, limit))

    def revealed_until(self, item_id: int, reviewer: str) -> datetime | None:
        """Until when the reviewer's latest reveal of the item lets the clear media be served
        (None: never revealed, or the time is over)."""
        last = self.records.last_reveal(item_id, reviewer)
        if last is None:
            return None
        until = last + timedelta(seconds=self.settings.review_reveal_seconds)
        return until if until > datetime.now(UTC) else None

    def media(
        self, item_id: int, reviewer: str, *, clear: bool = False, actor: str | None = None
    ) -> Rendition:
        """An item's media for the review page, read from the evidence store (which logs the
        read): shielded (greyscale, blurred) by default; ``clear`` only within
        ``review_reveal_seconds`` of the reviewer's own logged reveal. A video's shielded
        rendition is a blurred greyscale picture of one frame; the clear one is the video."""
        item = self.item(item_id)
        evidence_id = _preserved(item)
        if clear and self.revealed_until(item_id, reviewer) is None:
            raise PermissionDeniedError(
                "the clear media is shown only for a few seconds after a reveal",
                hint="reveal the item again (each reveal is logged and counted)",
            )
        data = self.evidence.read(evidence_id, actor=actor or reviewer)
        kind = media_kind(sniff(data[:HEAD_BYTES]))
        if kind == "video":
            if clear:
                return media.Rendition(data, media.video_mime(data))
            return media.shielded_video(data, max_pixels=self.settings.max_image_pixels)
        if kind is None:
            raise UnsupportedMediaError(
                f"the preserved copy of item {item_id} is not an image or video",
                hint="decide on the hashes and matches; the file can be examined offline",
            )
        limit, memory = self.settings.max_image_pixels, self.settings.max_decode_memory
        return (
            media.clear(data, max_pixels=limit, max_memory=memory)
            if clear
            else media.shielded(data, max_pixels=limit, max_memory=memory)
        )

    # -- false-positive control -------------------------------------------------------------

    def disabled_entries(self) -> list[DisabledEntry]:
        """Bank entries disabled after repeated false positives, waiting for a curator."""
        return self.records.disabled_entries()

    def reenable_entry(self, entry_id: int, *, actor: str) -> None:
        """A curator looked and the entry is right: enable it again and reset its count."""
        waiting = {e.entry_id: e for e in self.records.disabled_entries()}
        entry = waiting.get(entry_id)
        if entry is None:
            raise NotFoundError(
                f"entry {entry_id} is not disabled pending review",
                hint="see `amparo cases disabled-entries`",
            )
        self.store.set_entries_enabled(entry.bank, [], True, actor=actor, ids=[entry_id])
        self.records.mark_disabled(entry_id, None, actor=actor)

    def false_positive_counts(self, entry_ids: list[int]) -> dict[int, int]:
        return self.records.false_positive_counts(entry_ids)


def _statuses(status: str) -> tuple[str, ...]:
    try:
        return QUEUE_STATUSES[status]
    except KeyError:
        raise InputError(
            f"unknown case status {status!r}", hint="use one of " + ", ".join(QUEUE_STATUSES)
        ) from None


def _check_decision(kind: str, classification: str | None) -> tuple[str, str | None]:
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


def _check_annotations(annotations: tuple[str, ...] | list[str]) -> tuple[str, ...]:
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


def _preserved(item: CaseItem) -> int:
    """The evidence id of an item's preserved copy; NotFoundError when it has none."""
    if item.evidence_id is None:
        raise NotFoundError(
            f"item {item.id} has no preserved copy to show",
            hint="media is shown from the evidence store; have the rule that opens cases "
            "preserve evidence, then decide on the hashes and matches meanwhile",
        )
    return item.evidence_id


def _day_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _match(m: dict[str, Any]) -> Match:
    return Match(
        bank=str(m.get("bank")),
        entry_id=int(m.get("entry_id") or 0),
        signal_type=str(m.get("signal_type")),
        distance=int(m.get("distance") or 0),
        category=m.get("category"),
        tags=tuple(m.get("tags") or ()),
        source_id=m.get("source_id"),
        transform=m.get("transform"),
        video=VideoMatchDetail.from_json(m["video"]) if m.get("video") else None,
    )


def _decision(d: StoredDecision) -> Decision:
    return Decision(
        kind=d.kind,
        reviewer=d.reviewer,
        at=d.at,
        classification=d.classification,
        annotations=d.annotations,
        note=d.note,
    )


def _item_view(i: StoredItem) -> CaseItem:
    return CaseItem(
        id=i.id,
        case_id=i.case_id,
        sha256=i.sha256,
        md5=i.md5,
        size=i.size,
        media_kind=i.media_kind,
        file_name=i.file_name,
        source=i.source,
        matches=tuple(_match(m) for m in i.matches),
        evidence_id=i.evidence_id,
        first_seen=i.first_seen,
        last_seen=i.last_seen,
        sightings=i.sightings,
        viewed=i.viewed,
        decision=_decision(i.decision) if i.decision is not None else None,
        status=i.status,
        priority=i.priority,
        mime=i.mime,
    )


def _case_view(c: StoredCase) -> CaseView:
    return CaseView(
        id=c.id,
        group=c.group_key,
        status=c.status,
        priority=c.priority,
        opened_at=c.opened_at,
        updated_at=c.updated_at,
        items=tuple(_item_view(i) for i in c.items),
        rule=c.rule,
    )
