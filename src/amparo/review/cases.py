"""Cases: matches grouped by content and by source, ordered by priority, decided by reviewers.

The types they are made of are in :mod:`amparo.review.model`, the contract the reports and
web layers build on (re-exported here for them).

Grouping (:meth:`CaseService.open_or_extend`):

1. content whose SHA-256 an open (or escalated) case already holds extends that item: one more
   sighting, new matches merged in;
2. otherwise, content with a source group (``Source.group_key``: the account, else the scan)
   joins the open case of that group as a new item;
3. otherwise a new case is opened for the content (group ``content:<sha256>``).

Order: see :mod:`amparo.review.priority`. Wellness: every reveal of clear media is logged and
counted per reviewer per UTC day, refused past ``review_daily_limit``. False-positive control:
a ``false_positive`` decision counts against every bank entry the item matched; an entry at
``review_fp_disable_after`` is disabled until a curator looks at it. A decision (or its undo),
its false-positive count and the entries it disables (or enables again) are one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from amparo.clock import Clock, as_utc, utc_now
from amparo.config import LOCAL_ACTOR
from amparo.errors import (
    AmparoError,
    ExposureLimitError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedMediaError,
)
from amparo.events import MatchedContent
from amparo.media.sniff import HEAD_BYTES, media_kind, sniff
from amparo.review import media
from amparo.review.media import Rendition
from amparo.review.model import (
    CLASSIFICATIONS,
    DECISION_KINDS,
    QUEUE_STATUSES,
    CaseItem,
    CaseView,
    Decision,
    DisabledEntry,
    Exposure,
    NewItem,
    Reveal,
    check_annotations,
    check_decision,
    check_note,
    check_statuses,
)
from amparo.review.priority import merge_matches
from amparo.store.review import (
    CaseRepository,
    DecisionRepository,
    FalsePositiveRepository,
    RevealRepository,
)

if TYPE_CHECKING:
    from amparo.config import Settings
    from amparo.evidence import EvidenceStore
    from amparo.store import Store

__all__ = [
    "CLASSIFICATIONS",
    "DECISION_KINDS",
    "QUEUE_STATUSES",
    "CaseItem",
    "CaseService",
    "CaseView",
    "Decision",
    "Exposure",
    "ExposureLimitError",
    "Reveal",
]

log = logging.getLogger("amparo.review")


class CaseService:
    """Cases, decisions, reveals and false-positive control over one installation.
    ``clock`` is the wall time it decides by (undo grace, reveal time, the UTC day)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        evidence: EvidenceStore,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.store = store
        self.evidence = evidence
        self.clock = clock
        self.case_store = CaseRepository(store.db)
        self.decision_store = DecisionRepository(store.db)
        self.fp_store = FalsePositiveRepository(store.db)
        self.reveal_store = RevealRepository(store.db)
        self._on_decision: list[Callable[[CaseItem, Decision], object]] = []

    def on_decision(self, callback: Callable[[CaseItem, Decision], object]) -> None:
        """Also run ``callback(item, decision)`` after each decision's transaction commits
        (never on rollback). The composition root gives it the exchanges' opinion queue
        (review knows nothing of exchanges). A callback's failure is logged, never the
        decision's: the decision is already stored."""
        self._on_decision.append(callback)

    def _run_on_decision(self, item_id: int, decision: Decision) -> None:
        for callback in self._on_decision:
            try:
                callback(self.item(item_id), decision)
            except Exception:
                log.exception("a decision listener failed for item %s", item_id)

    # -- cases ------------------------------------------------------------------------------

    def open_or_extend(
        self,
        content: MatchedContent,
        *,
        evidence_id: int | None = None,
        rule: str | None = None,
        actor: str = LOCAL_ACTOR,
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
        opened = self.case_store.open_or_extend(
            new, group_key=content.source.group_key, rule=rule, actor=actor, merge=merge_matches
        )
        return opened.case_id

    def get(self, case_id: int) -> CaseView:
        case = self.case_store.case(case_id)
        if case is None:
            raise NotFoundError(f"no case {case_id}", hint="see `amparo cases list`")
        return case

    def item(self, item_id: int) -> CaseItem:
        item = self.case_store.item(item_id)
        if item is None:
            raise NotFoundError(f"no case item {item_id}", hint="see `amparo cases show CASE`")
        return item

    def queue(self, status: str = "waiting", *, limit: int = 50, offset: int = 0) -> list[CaseView]:
        """Cases in priority order (most urgent, then longest waiting, first)."""
        return self.case_store.queue(
            statuses=check_statuses(status), limit=max(1, min(limit, 500)), offset=max(0, offset)
        )

    def count(self, status: str = "waiting") -> int:
        return self.case_store.count(check_statuses(status))

    def history(self, item_id: int) -> list[Decision]:
        """Every decision on an item, oldest first."""
        self.item(item_id)
        return self.decision_store.decisions(item_id)

    # -- decisions --------------------------------------------------------------------------

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
        kind, classification = check_decision(kind, classification)
        clean = check_annotations(annotations)
        note = check_note(note)
        actor = actor or reviewer
        now = self.clock()
        limit = self.settings.review_fp_disable_after
        with self.store.transaction(refresh=False) as tx:
            result = self.decision_store.decide(
                item_id,
                kind=kind,
                classification=classification,
                annotations=clean,
                note=note,
                reviewer=reviewer,
                at=now,
                count_against=self.item(item_id).entry_ids,
                actor=actor,
            )
            if result.fp_counts and limit > 0:
                for entry_id, bank in self.fp_store.entries_to_disable(
                    list(result.fp_counts), limit
                ):
                    self.fp_store.mark_disabled(
                        entry_id,
                        now,
                        actor=actor,
                        details={"false_positives": result.fp_counts[entry_id], "limit": limit},
                    )
                    self.store.banks.set_entries_enabled(
                        bank, [], False, actor=actor, ids=[entry_id]
                    )
            if self._on_decision:
                decision = result.decision
                tx.after_commit(lambda: self._run_on_decision(item_id, decision))
        # A false positive's preserved copy is not discarded here: the decision may be undone
        # within review_undo_seconds (a slip of one key must not destroy evidence), so the copy
        # goes once that grace has passed (discard_false_positives, run by evidence purge).
        return result.decision

    def undo_until(self, decision: Decision) -> datetime:
        """Until when ``decision`` may be undone (``review_undo_seconds`` after it)."""
        return as_utc(decision.at) + timedelta(seconds=self.settings.review_undo_seconds)

    def undo(self, item_id: int, *, reviewer: str, actor: str | None = None) -> Decision | None:
        """Take back ``reviewer``'s latest decision on an item within ``review_undo_seconds``
        of it (audit-logged as ``case.decision_undone``); a false positive that counted
        against bank entries is uncounted. Returns the item's decision now (None: it waits
        for review again). An entry that false positive disabled, now under
        ``review_fp_disable_after`` again, is enabled again."""
        actor = actor or reviewer
        now = self.clock()
        limit = self.settings.review_fp_disable_after
        with self.store.transaction(refresh=False):
            undone = self.decision_store.undo(
                item_id,
                reviewer=reviewer,
                since=now - timedelta(seconds=self.settings.review_undo_seconds),
                at=now,
                count_against=self.item(item_id).entry_ids,
                actor=actor,
            )
            uncounted = set(undone.fp_uncounted)
            waiting = self.fp_store.disabled_entries() if uncounted else []
            for entry in waiting:
                if entry.entry_id in uncounted and (limit <= 0 or entry.false_positives < limit):
                    self.store.banks.set_entries_enabled(
                        entry.bank, [], True, actor=actor, ids=[entry.entry_id]
                    )
                    self.fp_store.mark_disabled(
                        entry.entry_id,
                        None,
                        actor=actor,
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
        now = now or self.clock()
        cutoff = now - timedelta(seconds=self.settings.review_undo_seconds)
        done: list[int] = []
        for item_id, evidence_id in self.decision_store.false_positives_due(cutoff):
            if evidence_id in done:
                continue
            if self.case_store.evidence_still_needed(
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
        seen = self.reveal_store.revealed_items(reviewer, _day_start(self.clock()))
        return Exposure(reviewer, len(seen), self.settings.review_daily_limit)

    def record_reveal(self, item_id: int, reviewer: str, *, actor: str | None = None) -> Reveal:
        """Log that ``reviewer`` deliberately revealed an item's clear media (audit
        ``case.reveal``) and count it toward today's exposure. An item already revealed today
        does not count again; a new item past ``review_daily_limit`` is refused, and so is
        an item with no preserved copy (there is nothing to see)."""
        _preserved(self.item(item_id))
        now = self.clock()
        limit = self.settings.review_daily_limit
        # The limit is checked in the same transaction as the write (two tabs revealing at
        # once cannot both slip past it).
        count = self.reveal_store.reveal(
            item_id, reviewer, now, since=_day_start(now), actor=actor or reviewer, limit=limit
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
        last = self.reveal_store.last_reveal(item_id, reviewer)
        if last is None:
            return None
        until = last + timedelta(seconds=self.settings.review_reveal_seconds)
        return until if until > self.clock() else None

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
        return self.fp_store.disabled_entries()

    def reenable_entry(self, entry_id: int, *, actor: str) -> None:
        """A curator looked and the entry is right: enable it again and reset its count (one
        transaction)."""
        with self.store.transaction(refresh=False):
            waiting = {e.entry_id: e for e in self.fp_store.disabled_entries()}
            entry = waiting.get(entry_id)
            if entry is None:
                raise NotFoundError(
                    f"entry {entry_id} is not disabled pending review",
                    hint="see `amparo cases disabled-entries`",
                )
            self.store.banks.set_entries_enabled(entry.bank, [], True, actor=actor, ids=[entry_id])
            self.fp_store.mark_disabled(entry_id, None, actor=actor)

    def false_positive_counts(self, entry_ids: list[int]) -> dict[int, int]:
        return self.fp_store.counts(entry_ids)


def _preserved(item: CaseItem) -> int:
    """The evidence id of an item's preserved copy; NotFoundError when it has none."""
    if item.evidence_id is None:
        raise NotFoundError(
            f"item {item.id} has no preserved copy to show",
            hint="media is shown from the evidence store; have the rule that opens cases "
            "preserve evidence, then decide on the hashes and matches meanwhile",
        )
    return item.evidence_id


def _day_start(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day (the exposure count starts again then)."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
