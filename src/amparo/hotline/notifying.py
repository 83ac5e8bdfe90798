"""Notices until removal, and forwards to partner hotlines: which reports are due, whom each
notice goes to, and what is recorded once it is sent.

Due: ``confirmed`` reports (a first notice, or a renewed one after the content reappeared)
and ``notified`` ones whose ``next_notice_at`` has come, each with an attribution. Content
hosted in a country outside ``hotline_countries`` whose partner hotline is configured is
forwarded to it once (signed export); anything else goes to the host's abuse contact (or the
CDN's, asked to name the origin), by email or through a configured webhook, repeated every
``notice_repeat_hours`` until re-checks find it removed, and escalated after
``notice_escalate_after`` repeats.

Sending happens outside any database transaction; recording it (the notice row, the report's
new state and the audit entry) is one unit of work afterwards. A per-report lease keeps two
passes (or processes) from sending the same notice: it is taken briefly to render, lengthened
to a whole repeat interval just before sending, and released once the notice is recorded. A
process that dies between sending and recording leaves the long lease behind, so the next pass
does not send again before the notice would have repeated anyway.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from amparo.config import SYSTEM_ACTOR
from amparo.errors import AmparoError, ConflictError
from amparo.hotline.context import HotlineContext
from amparo.hotline.model import Notice, UrlReport
from amparo.hotline.notice_plan import (
    NO_CONTACT,
    NoticePlan,
    NoticeSender,
    Sent,
    noticed_items,
)
from amparo.hotline.partners import WebhookRoutes, hotline_countries, load_partners, partner_for
from amparo.hotline.rechecks import next_recheck
from amparo.store.leases import default_holder

log = logging.getLogger("amparo.hotline.notifying")

RETRY_AFTER_FAILURE = timedelta(hours=1)
"""A notice that failed to send (server down, refused) is tried again this much later (or
after ``notice_repeat_hours`` when that is shorter)."""
NOTICEABLE = ("confirmed", "notified", "forwarded")


class Notifier:
    """Sends due notices, repeats, escalations and forwards, and records each."""

    def __init__(self, ctx: HotlineContext) -> None:
        self.ctx = ctx
        self.sender = NoticeSender(ctx)
        self._told_no_sender = False

    def notify_due(self, now: datetime | None = None, *, limit: int = 50) -> int:
        """Send the notices, repeats, escalations and forwards due now; how many reports."""
        now = now or self.ctx.clock()
        done = 0
        for report_id in self.ctx.records.notice_due(now, limit):
            try:
                if self._notify(report_id, actor=SYSTEM_ACTOR, now=now, force=False, strict=False):
                    done += 1
            except AmparoError as exc:
                log.warning("notice for URL report %d not sent: %s", report_id, exc)
            except Exception:
                log.exception("notice for URL report %d failed; tried again next pass", report_id)
        return done

    def notify(self, report_id: int, *, actor: str, force: bool = False) -> list[Notice]:
        """Send a report's due notice (or, with ``force``, one now)."""
        return self._notify(report_id, actor=actor, now=self.ctx.clock(), force=force, strict=True)

    # -- one report --------------------------------------------------------------------------

    def _notify(
        self, report_id: int, *, actor: str, now: datetime, force: bool, strict: bool
    ) -> list[Notice]:
        report = self.ctx.records.get(report_id)
        refusal = self._refusal(report, now, force)
        if refusal is not None:
            if strict:
                raise refusal
            return []
        name = f"hotline:notice:{report_id}"
        settings = self.ctx.settings
        short = settings.smtp_timeout_seconds * 4 + settings.webhook_timeout_seconds + 60
        # Leases run on the clock as it is now, not the pass's start: earlier sends in a long
        # pass must not leave this one a lease that has already run out.
        token = self.ctx.leases.acquire(name, default_holder(), short, now=self.ctx.clock())
        if token is None:
            if strict:
                raise ConflictError(
                    f"a notice for URL report {report_id} is being sent (or was sent and not "
                    "recorded: a process stopped while sending)",
                    hint="try again later; the lease expires on its own",
                )
            return []
        release = True
        try:
            report = self.ctx.records.get(report_id)  # as it is now that the lease is ours
            refusal = self._refusal(report, now, force)
            if refusal is not None:
                if strict:
                    raise refusal
                return []
            plan = self._plan(report, now, strict=strict)
            if plan is None:
                return []
            plan.prepare()  # renders and signs: what may fail before anything is sent
            if plan.sends:
                # From here a crash may leave a notice sent but not recorded: the lease then
                # outlives the process for a whole repeat interval.
                long = max(short, settings.notice_repeat_hours * 3600.0)
                if not self.ctx.leases.renew(name, token, long, now=self.ctx.clock()):
                    # Someone took the lease over meanwhile: they send it, not us.
                    if strict:
                        raise ConflictError(
                            f"the notice for URL report {report_id} was taken over by another "
                            "process",
                            hint="see `amparo hotline show` for what was sent",
                        )
                    return []
                release = False
            sent = plan.send()
            notices = self._record(report, plan, sent, actor=actor, now=now)
            release = True
            return notices
        finally:
            if release:
                self.ctx.leases.release(name, token)

    def _refusal(self, report: UrlReport, now: datetime, force: bool) -> ConflictError | None:
        """Why the report gets no notice now (None: it does)."""
        if report.attribution is None:
            return ConflictError(
                f"URL report {report.id} has no hosting attribution yet",
                hint="its host, country and abuse contact are found after the crawl confirms "
                "it; attribute it first",
            )
        if report.status not in NOTICEABLE:
            return ConflictError(
                f"URL report {report.id} is {report.status}: nothing to notify",
                hint="notices go out for confirmed content only, until it is removed",
            )
        if force:
            return None
        if report.status == "forwarded":
            return ConflictError(
                f"URL report {report.id} was forwarded to a partner hotline",
                hint="forwards are sent once; use force to send it again",
            )
        due = report.next_notice_at
        if (due is not None and due > now) or (report.status == "notified" and due is None):
            when = due.isoformat() if due else "never"
            return ConflictError(
                f"the next notice of URL report {report.id} is due at {when}",
                hint="use force to send one now",
            )
        return None

    def _plan(self, report: UrlReport, now: datetime, *, strict: bool) -> NoticePlan | None:
        settings = self.ctx.settings
        attribution = report.attribution
        assert attribution is not None
        items = noticed_items(self.ctx.records.items(report.id))
        reply_to = settings.notice_reply_to or settings.notice_from
        partner = partner_for(
            attribution.country, hotline_countries(settings), load_partners(settings)
        )
        plan = NoticePlan(self.sender, report, items, now, reply_to)
        if partner is not None:
            plan.forward(partner)
        else:
            webhook = WebhookRoutes.from_settings(settings).url_for(report.host, attribution)
            plan.notice(webhook)
        if plan.needs_email and not settings.notice_from:
            message = (
                f"notice for URL report {report.id} not sent: notice_from is empty (email "
                "notices are off)"
            )
            if strict:
                raise ConflictError(message, hint="set notice_from (and smtp_url) to send them")
            # Once per process: the scheduler would otherwise repeat it every pass.
            level = logging.DEBUG if self._told_no_sender else logging.WARNING
            log.log(level, "%s; set notice_from to send them", message)
            self._told_no_sender = True
            return None
        return plan

    def _record(
        self, report: UrlReport, plan: NoticePlan, sent: list[Sent], *, actor: str, now: datetime
    ) -> list[Notice]:
        settings = self.ctx.settings
        repeat = timedelta(hours=settings.notice_repeat_hours)
        main = sent[0]
        changes: dict[str, Any] = {}
        if main.delivery.ok:
            changes.update(
                status="forwarded" if plan.kind == "forward" else "notified",
                last_notice_at=now,
                notices_sent=report.notices_sent + 1,
                next_notice_at=None if plan.kind == "forward" else now + repeat,
            )
            if report.first_notice_at is None:
                changes["first_notice_at"] = now
            if report.next_recheck_at is None:
                changes["next_recheck_at"] = next_recheck(settings.recheck_hours, 0, now)
            if plan.kind == "escalation":
                changes["escalated"] = True
        elif main.delivery.error == NO_CONTACT:
            changes["next_notice_at"] = now + repeat
        else:
            changes["next_notice_at"] = now + min(repeat, RETRY_AFTER_FAILURE)
        verb = "hotline.forward" if plan.kind == "forward" else "hotline.notice"
        with self.ctx.store.transaction(refresh=False) as tx:
            notices = [
                self.ctx.records.add_notice(
                    report.id,
                    kind=one.kind,
                    channel=one.channel,
                    recipient=one.recipient,
                    at=now,
                    language=one.language,
                    ok=one.delivery.ok,
                    error=one.delivery.error,
                    detail={**one.detail, "answer": one.delivery.answer},
                )
                for one in sent
            ]
            self.ctx.records.update(report.id, at=now, **changes)
            tx.audit(
                actor,
                verb,
                f"url-report:{report.id}",
                {
                    "kind": plan.kind,
                    "notices": [n.id for n in notices],
                    "channel": main.channel,
                    "recipient": main.recipient,
                    "ok": main.delivery.ok,
                    "error": main.delivery.error,
                    "number": plan.number,
                },
            )
        for one in sent:
            if one.delivery.ok:
                log.info("%s for URL report %d sent to %s", one.kind, report.id, one.recipient)
            else:
                log.warning(
                    "%s for URL report %d to %s failed: %s",
                    one.kind,
                    report.id,
                    one.recipient or "(nobody)",
                    one.delivery.error,
                )
        return notices
