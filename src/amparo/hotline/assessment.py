"""Analysts' assessment of unknown hotline items (ICCAM's classification), and the share-back
of an item they confirmed.

An item the crawl could not match waits (``unknown``) with its preserved copy. An analyst
classifies it ``baseline`` (illegal internationally), ``national`` (illegal under a named
jurisdiction's law, see :mod:`amparo.hotline.jurisdictions`) or ``not_illegal``; the item
becomes ``assessed``, and may be assessed again by the same rules. A ``verified`` item matched
a bank: its status is not an analyst's to change.

The report moves on with its items: one confirmed item (verified, or assessed baseline or
national) moves a report waiting in ``assessment`` to ``confirmed`` (its notice is due);
every item decided and none confirmed closes it. The preserved copy of media assessed
``not_illegal`` is kept only ``hotline_not_illegal_retention_days`` more (unless another item
or case still relies on it, or it is on legal hold). Each assessment, its report's move and
the retention change are one unit of work, audit-logged ``hotline.assess``.

Share-back (:meth:`Assessments.propose`): the proposal path of :mod:`amparo.exchanges.proposals`
works on confirmed *case items*, so the hotline item gets one (a case grouped
``hotline:<report>`` with no matches and the item's preserved copy), decided ``confirm`` by the
analyst with the industry classification they choose, and proposed to the bank for a curator's
approval, all in one unit of work.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from amparo.clock import as_utc
from amparo.errors import (
    AmparoError,
    ConflictError,
    ExposureLimitError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedMediaError,
)
from amparo.events import Source
from amparo.hotline.context import HotlineContext
from amparo.hotline.jurisdictions import check_jurisdiction
from amparo.hotline.model import ASSESSMENTS, HotlineItem, UrlReport
from amparo.media.sniff import HEAD_BYTES, media_kind, sniff
from amparo.review import media
from amparo.review.media import Rendition
from amparo.review.model import CLASSIFICATIONS, Exposure, NewItem, Reveal
from amparo.review.priority import merge_matches
from amparo.store.review.exposure import RevealRepository

if TYPE_CHECKING:
    from amparo.evidence.model import EvidenceItem
    from amparo.exchanges.proposals import Proposal
    from amparo.review.model import CaseItem

MAX_NOTE = 4000
ASSESSABLE = ("unknown", "assessed")
"""Item statuses an analyst may assess (``verified`` items matched a bank)."""


class Assessments:
    """Analysts' ICCAM classification of unknown items, and their share-back."""

    def __init__(self, ctx: HotlineContext) -> None:
        self.ctx = ctx
        self.reveals = RevealRepository(ctx.store.db)

    def assess(
        self,
        item_id: int,
        assessment: str,
        *,
        actor: str,
        jurisdiction: str | None = None,
        note: str | None = None,
    ) -> HotlineItem:
        """An analyst's classification of an item (``baseline``, ``national`` under a
        jurisdiction, ``not_illegal``); moves its report on. Audit-logged ``hotline.assess``.

        InputError for an unknown assessment, a ``national`` one without a known
        jurisdiction (or another naming one), a note over 4000 characters; ConflictError for
        a verified item."""
        assessment = (assessment or "").strip().lower()
        if assessment not in ASSESSMENTS:
            raise InputError(
                f"{assessment!r} is not an assessment", hint="use " + ", ".join(ASSESSMENTS)
            )
        code: str | None = None
        if assessment == "national":
            code = check_jurisdiction(jurisdiction, self.ctx.settings)
        elif jurisdiction is not None and jurisdiction.strip():
            raise InputError(
                f"only a national assessment names a jurisdiction, not {assessment}",
                hint="leave the jurisdiction out, or assess it national",
            )
        note = _note(note)
        records = self.ctx.records
        now = self.ctx.clock()
        with self.ctx.store.transaction(refresh=False) as tx:
            item = records.item(item_id)
            if item.status not in ASSESSABLE:
                raise ConflictError(
                    f"hotline item {item_id} is {item.status}: it matched a bank entry",
                    hint="only unknown (or already assessed) items are assessed by an analyst",
                )
            previous = item.assessment
            item = records.update_item(
                item_id,
                status="assessed",
                assessment=assessment,
                jurisdiction=code,
                assessed_by=actor,
                assessed_at=now,
                note=note,
            )
            report = self._move_report(item.report_id, now)
            retention = self._retention(item, previous, actor)
            tx.audit(
                actor,
                "hotline.assess",
                f"url-report:{item.report_id}",
                {
                    "item": item.id,
                    "sha256": item.sha256,
                    "assessment": assessment,
                    "jurisdiction": code,
                    "previous": previous,
                    "report_status": report.status,
                    **retention,
                },
            )
        return item

    def waiting(self, *, limit: int = 50, offset: int = 0) -> list[HotlineItem]:
        """Unknown items waiting for an analyst, oldest first."""
        return self.ctx.records.waiting_items(limit=max(1, min(limit, 500)), offset=max(0, offset))

    def count_waiting(self) -> int:
        return self.ctx.records.count_waiting()

    def reveal(self, item_id: int, reviewer: str, *, actor: str | None = None) -> Reveal:
        """Log that an analyst deliberately revealed an item's clear media (audit
        ``hotline.reveal``), counted with review reveals against ``review_daily_limit``; the
        clear media is then served for ``review_reveal_seconds``."""
        item = self.ctx.records.item(item_id)
        if item.evidence_id is None:
            raise NotFoundError(
                f"hotline item {item_id} has no preserved copy to reveal",
                hint="assess it on its URL and hashes",
            )
        settings = self.ctx.settings
        now = self.ctx.clock()
        limit = settings.review_daily_limit
        since = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        count = self.reveals.reveal_hotline(
            item_id, reviewer, now, since=since, actor=actor or reviewer, limit=limit
        )
        if count is None:
            raise ExposureLimitError(
                f"you have looked at {limit} items today, the daily limit",
                hint="please take a break: assessments can wait or a colleague can take over; "
                "the count starts again at midnight UTC",
            )
        until = now + timedelta(seconds=settings.review_reveal_seconds)
        return Reveal(item_id, until, Exposure(reviewer, count, limit))

    def media(
        self, item_id: int, reviewer: str, *, clear: bool = False, actor: str | None = None
    ) -> Rendition:
        """The item's preserved copy for the analyst's page: shielded by default (see
        :meth:`shielded_media`); ``clear`` only within ``review_reveal_seconds`` of the
        analyst's own logged reveal (a video then plays as it is)."""
        if not clear:
            return self.shielded_media(item_id, actor=actor or reviewer)
        last = self.reveals.last_hotline_reveal(item_id, reviewer)
        seconds = self.ctx.settings.review_reveal_seconds
        if last is None or last + timedelta(seconds=seconds) <= self.ctx.clock():
            raise PermissionDeniedError(
                "the clear media is shown only for a few seconds after a reveal",
                hint="reveal the item again (each reveal is logged and counted)",
            )
        item = self.ctx.records.item(item_id)
        if item.evidence_id is None:
            raise NotFoundError(f"hotline item {item_id} has no preserved copy to show")
        settings = self.ctx.settings
        data = self.ctx.evidence.read(item.evidence_id, actor=actor or reviewer)
        kind = media_kind(sniff(data[:HEAD_BYTES]))
        if kind == "video":
            return media.Rendition(data, media.video_mime(data))
        if kind is None:
            raise UnsupportedMediaError(
                f"the preserved copy of hotline item {item_id} is not an image or video",
                hint="assess it on its URL and hashes; the file can be examined offline",
            )
        return media.clear(
            data, max_pixels=settings.max_image_pixels, max_memory=settings.max_decode_memory
        )

    def shielded_media(self, item_id: int, *, actor: str) -> Rendition:
        """The item's preserved copy as the analyst's page shows it: greyscale and blurred
        (a video: one such frame), never the clear media. The read is audit-logged by the
        evidence store."""
        item = self.ctx.records.item(item_id)
        if item.evidence_id is None:
            raise NotFoundError(
                f"hotline item {item_id} has no preserved copy to show",
                hint="assess it on its URL and hashes",
            )
        settings = self.ctx.settings
        data = self.ctx.evidence.read(item.evidence_id, actor=actor)
        kind = media_kind(sniff(data[:HEAD_BYTES]))
        if kind == "video":
            return media.shielded_video(data, max_pixels=settings.max_image_pixels)
        if kind is None:
            raise UnsupportedMediaError(
                f"the preserved copy of hotline item {item_id} is not an image or video",
                hint="assess it on its URL and hashes; the file can be examined offline",
            )
        return media.shielded(
            data, max_pixels=settings.max_image_pixels, max_memory=settings.max_decode_memory
        )

    def propose(
        self,
        item_id: int,
        bank: str,
        *,
        actor: str,
        note: str | None = None,
        classification: str | None = None,
    ) -> Proposal:
        """Propose an item an analyst confirmed (``baseline`` or ``national``) to ``bank``
        for a curator's approval (see the module docstring). ``classification`` is the
        industry classification (A1, A2, B1, B2) the published entries carry: ICCAM's
        assessment does not say which it is, so the analyst does. Audit-logged
        ``hotline.propose`` (and ``case.opened``, ``case.decision``, ``proposal.create``).

        ConflictError when the item is not an assessed, confirmed one or has no preserved
        copy; InputError without a valid classification."""
        ctx = self.ctx
        if ctx.cases is None or ctx.proposals is None:
            raise ConflictError(
                "this installation's hotline has no share-back path",
                hint="run the hotline inside `amparo serve` (its composition wires proposals)",
            )
        chosen = (classification or "").strip().upper()
        if chosen not in CLASSIFICATIONS:
            raise InputError(
                "a proposal needs the industry classification its entries will carry",
                hint="use one of " + ", ".join(CLASSIFICATIONS) + " (Tech Coalition scheme)",
            )
        note = _note(note)
        item = ctx.records.item(item_id)
        if item.status != "assessed" or not item.confirmed:
            raise ConflictError(
                f"hotline item {item_id} is not assessed illegal "
                f"({item.status}{', ' + item.assessment if item.assessment else ''})",
                hint="only an item an analyst assessed baseline or national is proposed; "
                "verified items are already in a bank",
            )
        if item.evidence_id is None:
            raise ConflictError(
                f"hotline item {item_id} has no preserved copy",
                hint="a proposal publishes hashes computed from the preserved content",
            )
        preserved = ctx.evidence.get(item.evidence_id)
        jurisdiction = item.jurisdiction if item.assessment == "national" else "INT"
        now = ctx.clock()
        with ctx.store.transaction(refresh=False) as tx:
            case_item = self._case_item(item, preserved, actor, now)
            decision = case_item.decision
            if decision is None or decision.classification != chosen:
                if decision is not None and decision.kind not in ("escalate", "confirm"):
                    raise ConflictError(
                        f"case item {case_item.id} of this content was decided {decision.kind}",
                        hint="a reviewer judged this content otherwise: settle it in "
                        f"/review/cases/{case_item.case_id} first",
                    )
                ctx.cases.decide(
                    case_item.id,
                    "confirm",
                    classification=chosen,
                    note=f"hotline item {item.id}: assessed {item.assessment}"
                    + (f" ({item.jurisdiction})" if item.jurisdiction else ""),
                    reviewer=item.assessed_by or actor,
                    actor=actor,
                )
            proposal = ctx.proposals.propose(
                case_item.id, bank, actor=actor, note=note, jurisdiction=jurisdiction
            )
            tx.audit(
                actor,
                "hotline.propose",
                f"url-report:{item.report_id}",
                {
                    "item": item.id,
                    "case_item": case_item.id,
                    "proposal": proposal.id,
                    "bank": proposal.bank,
                    "jurisdiction": jurisdiction,
                },
            )
        return proposal

    def _case_item(
        self, item: HotlineItem, preserved: EvidenceItem, actor: str, now: datetime
    ) -> CaseItem:
        """The case item that stands for ``item`` on the share-back path: the one an earlier
        proposal of it made (the ``hotline.propose`` audit entries name it), else a new one
        (or the open one holding the same content)."""
        ctx = self.ctx
        assert ctx.cases is not None
        earlier = ctx.store.audit_log.entries(
            100, f"url-report:{item.report_id}", action="hotline.propose"
        )
        for entry in earlier:
            if entry.details.get("item") == item.id:
                try:
                    found = ctx.cases.item(int(entry.details["case_item"]))
                except (AmparoError, KeyError, TypeError, ValueError):
                    continue
                if found.sha256 == item.sha256.lower():
                    return found
        # Not CaseService.open_or_extend: it refuses content with no bank matches, and an
        # unknown item has none by definition.
        opened = ctx.cases.case_store.open_or_extend(
            NewItem(
                sha256=item.sha256.lower(),
                md5=item.md5 or preserved.md5,
                size=item.size if item.size is not None else preserved.size,
                media_kind=item.media_kind or preserved.media_kind,
                mime=item.mime or preserved.mime,
                file_name=None,
                source=Source(kind="hotline", url=item.media_url).as_dict(),
                matches=[],
                evidence_id=item.evidence_id,
                at=now,
            ),
            group_key=f"hotline:{item.report_id}",
            rule="hotline",
            actor=actor,
            merge=merge_matches,
        )
        return ctx.cases.item(opened.item_id)

    # -- inside an assessment's unit of work ------------------------------------------------

    def _move_report(self, report_id: int, now: datetime) -> UrlReport:
        records = self.ctx.records
        report = records.get(report_id)
        items = records.items(report_id)
        confirmed = any(i.confirmed for i in items)
        decided = all(i.status in ("verified", "assessed") for i in items)
        if confirmed and report.status in ("assessment", "closed"):
            # A report closed because nothing illegal was found opens again when an item of
            # it is re-assessed illegal: its notice is due.
            values: dict[str, Any] = {"status": "confirmed"}
            if report.next_notice_at is None:
                values["next_notice_at"] = now
            return records.update(report_id, at=now, **values)
        if decided and not confirmed and report.status in ("assessment", "confirmed"):
            # Nothing illegal behind the URL (a notice, once sent, is not taken back here).
            return records.update(report_id, at=now, status="closed", next_notice_at=None)
        return report

    def _retention(self, item: HotlineItem, previous: str | None, actor: str) -> dict[str, Any]:
        """Shorten the copy's retention of media assessed not illegal; restore it when media
        assessed not illegal before is now confirmed. What changed, for the audit entry."""
        ctx = self.ctx
        if item.evidence_id is None:
            return {}
        reason = f"hotline item {item.id} assessed {item.assessment}"
        if item.assessment == "not_illegal":
            if self._copy_needed_elsewhere(item):
                return {"evidence_kept": "another item or case relies on it"}
            kept = ctx.evidence.expire_in(
                item.evidence_id,
                ctx.settings.hotline_not_illegal_retention_days,
                actor=actor,
                reason=reason,
            )
            return {"evidence_expires_at": _iso(kept.expires_at)}
        if previous == "not_illegal":
            # Preserving held content again extends its retention (never shortens it).
            try:
                data = ctx.evidence.read(item.evidence_id, actor=actor)
                kept = ctx.evidence.preserve(data, reason=reason, actor=actor)
            except AmparoError as exc:
                return {"evidence_restored": False, "evidence_error": exc.message}
            return {"evidence_expires_at": _iso(kept.expires_at)}
        return {}

    def _copy_needed_elsewhere(self, item: HotlineItem) -> bool:
        assert item.evidence_id is not None
        for other in self.ctx.records.items_with_evidence(item.evidence_id):
            if other.id != item.id and (other.status == "unknown" or other.confirmed):
                return True
        cases = self.ctx.cases
        if cases is None:
            return False
        try:
            return cases.case_store.evidence_still_needed(item.evidence_id, except_item=0)
        except NotFoundError:
            return False


def _note(note: str | None) -> str | None:
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise InputError(f"the note is over {MAX_NOTE} characters", hint="shorten it")
    return note


def _iso(when: datetime | None) -> str | None:
    return as_utc(when).isoformat() if when is not None else None
