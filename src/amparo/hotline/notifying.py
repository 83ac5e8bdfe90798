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

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.errors import MessageError
from typing import Any

from amparo.config import SYSTEM_ACTOR
from amparo.errors import AmparoError, ConflictError
from amparo.exchanges.signing import FeedSigner, organisation_id
from amparo.hotline.context import HotlineContext
from amparo.hotline.delivery import Delivery, SmtpServer, build_email, post_json, send_email
from amparo.hotline.model import HotlineItem, Notice, UrlReport
from amparo.hotline.notices import (
    Partner,
    Rendered,
    WebhookRoutes,
    forward_export,
    hotline_countries,
    load_partners,
    notice_language,
    partner_for,
    render_notice,
    sign_forward,
)
from amparo.store.leases import default_holder
from amparo.url_policy import UrlPolicy

log = logging.getLogger("amparo.hotline.notifying")

NO_CONTACT = "no abuse contact"
RETRY_AFTER_FAILURE = timedelta(hours=1)
"""A notice that failed to send (server down, refused) is tried again this much later (or
after ``notice_repeat_hours`` when that is shorter)."""
NOTICEABLE = ("confirmed", "notified", "forwarded")
KEY_ID_HEADER = "X-Amparo-Key-Id"
SIGNATURE_HEADER = "X-Amparo-Signature"
"""Webhook notices carry ``ed25519=<base64>``: the feed key's signature over the body."""


@dataclass
class _Sent:
    """One message sent (or tried), as it will be recorded."""

    kind: str
    channel: str
    recipient: str
    language: str
    delivery: Delivery
    detail: dict[str, Any] = field(default_factory=dict)


class Notifier:
    """Sends due notices, repeats, escalations and forwards, and records each."""

    def __init__(self, ctx: HotlineContext) -> None:
        self.ctx = ctx
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
        token = self.ctx.leases.acquire(name, default_holder(), short, now=now)
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
                self.ctx.leases.renew(name, token, long, now=now)
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

    def _plan(self, report: UrlReport, now: datetime, *, strict: bool) -> _Plan | None:
        settings = self.ctx.settings
        attribution = report.attribution
        assert attribution is not None
        items = _noticed_items(self.ctx.records.items(report.id))
        reply_to = settings.notice_reply_to or settings.notice_from
        partner = partner_for(
            attribution.country, hotline_countries(settings), load_partners(settings)
        )
        plan = _Plan(self, report, items, now, reply_to)
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
        self, report: UrlReport, plan: _Plan, sent: list[_Sent], *, actor: str, now: datetime
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
            first_recheck = _first_recheck(settings.recheck_hours)
            if report.next_recheck_at is None and first_recheck is not None:
                changes["next_recheck_at"] = now + first_recheck
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

    # -- what the plan sends through ---------------------------------------------------------

    def email(
        self,
        rendered: Rendered,
        to: str,
        *,
        at: datetime,
        attachment: tuple[str, bytes] | None = None,
    ) -> tuple[Delivery, str]:
        """Send ``rendered`` to ``to``; the delivery and the Message-ID."""
        settings = self.ctx.settings
        try:
            message = build_email(
                rendered,
                sender=settings.notice_from,
                to=to,
                reply_to=settings.notice_reply_to or settings.notice_from,
                at=at,
                attachment=attachment,
            )
        except (ValueError, TypeError, MessageError) as exc:
            # An abuse contact from RDAP is outside data: a malformed one fails this notice.
            return Delivery(False, f"cannot write the email to {to!r}: {exc}"), ""
        message_id = str(message["Message-ID"])
        try:
            server = SmtpServer.from_settings(settings)
        except AmparoError as exc:
            return Delivery(False, f"SMTP is not configured: {exc}"), message_id
        return send_email(server, message), message_id

    def post(
        self, url: str, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Delivery:
        settings = self.ctx.settings
        return post_json(
            url,
            payload,
            urls=UrlPolicy.from_settings(settings, resolver=self.ctx.resolver),
            timeout=settings.webhook_timeout_seconds,
            headers=headers,
        )

    def signer(self) -> FeedSigner:
        if self.ctx.signer is not None:
            return self.ctx.signer()
        return FeedSigner.of(self.ctx.settings)


class _Plan:
    """What one report's notice is (kind, number, recipients, channel) and how to send it."""

    def __init__(
        self,
        notifier: Notifier,
        report: UrlReport,
        items: list[HotlineItem],
        now: datetime,
        reply_to: str,
    ) -> None:
        self.notifier = notifier
        self.report = report
        self.items = items
        self.now = now
        self.reply_to = reply_to
        settings = notifier.ctx.settings
        self.number = report.notices_sent + 1
        if report.notices_sent == 0:
            self.kind = "notice"
        elif report.notices_sent > settings.notice_escalate_after:
            self.kind = "escalation"
        else:
            self.kind = "repeat"
        self.channel = "email"
        self.recipient = ""
        self.partner: Partner | None = None
        self.language = notice_language(report.country)
        self.rendered: Rendered | None = None
        self.detail: dict[str, Any] = {}
        self.signed: dict[str, Any] | None = None
        self.headers: dict[str, str] = {}

    @property
    def sends(self) -> bool:
        return bool(self.recipient)

    @property
    def needs_email(self) -> bool:
        return self.sends and self.channel == "email"

    def forward(self, partner: Partner) -> None:
        self.kind = "forward"
        self.partner = partner
        self.language = partner.language
        self.channel = "export" if partner.url else "email"
        self.recipient = partner.url or partner.email or ""

    def notice(self, webhook: str | None) -> None:
        attribution = self.report.attribution
        if webhook:
            self.channel, self.recipient = "webhook", webhook
        elif attribution is not None and attribution.abuse_email:
            self.channel, self.recipient = "email", attribution.abuse_email

    def _rendered(self) -> Rendered:
        settings = self.notifier.ctx.settings
        return render_notice(
            self.report,
            self.items,
            kind=self.kind,
            language=self.language,
            hotline=settings.hotline_name,
            reply_to=self.reply_to,
            number=self.number,
            partner=self.partner,
        )

    def _detail(self, rendered: Rendered) -> dict[str, Any]:
        attribution = self.report.attribution
        return {
            "subject": rendered.subject,
            "number": self.number,
            "urgent": self.kind == "escalation",
            "url": self.report.url,
            "media_urls": [item.media_url for item in self.items],
            "hashes": [
                {"sha256": item.sha256, "md5": item.md5, "pdq": item.pdq} for item in self.items
            ],
            "cdn": bool(attribution and attribution.cdn),
            "country": self.report.country,
        }

    def prepare(self) -> None:
        """Render the notice (and sign a forward's export)."""
        self.rendered = self._rendered()
        self.detail = self._detail(self.rendered)
        if self.channel == "webhook":
            # The body is the payload's canonical JSON: a receiver checks this signature
            # with the key `amparo feeds key` prints (see docs/hotline.md).
            signer = self.notifier.signer()
            self.headers = {
                KEY_ID_HEADER: signer.key_id,
                SIGNATURE_HEADER: "ed25519=" + signer.sign(self.rendered.payload),
            }
        if self.partner is not None:
            settings = self.notifier.ctx.settings
            signer = self.notifier.signer()
            export = forward_export(
                self.report,
                self.items,
                organisation=organisation_id(settings, signer),
                hotline=settings.hotline_name,
                reply_to=self.reply_to,
                partner=self.partner,
                at=self.now,
            )
            self.signed = sign_forward(export, signer)
            self.detail.update(
                partner=self.partner.name,
                partner_country=self.partner.country,
                key_id=self.signed["key_id"],
                signature=self.signed["signature"],
            )

    def send(self) -> list[_Sent]:
        """Send (or, with nobody to send to, fail) the prepared notice; the escalation copy
        too."""
        if self.rendered is None:
            self.prepare()
        rendered, detail = self.rendered, self.detail
        assert rendered is not None
        if not self.recipient:
            return [
                _Sent(
                    self.kind, self.channel, "", self.language, Delivery(False, NO_CONTACT), detail
                )
            ]
        if self.partner is not None:
            return [self._send_forward(rendered, detail, self.partner)]
        if self.channel == "webhook":
            delivery = self.notifier.post(self.recipient, rendered.payload, self.headers)
        else:
            delivery, message_id = self.notifier.email(rendered, self.recipient, at=self.now)
            detail["message_id"] = message_id
        sent = [_Sent(self.kind, self.channel, self.recipient, self.language, delivery, detail)]
        copy_to = self.notifier.ctx.settings.notice_escalation_email
        if self.kind == "escalation" and copy_to and self.notifier.ctx.settings.notice_from:
            copy, message_id = self.notifier.email(rendered, copy_to, at=self.now)
            sent.append(
                _Sent(
                    self.kind,
                    "email",
                    copy_to,
                    self.language,
                    copy,
                    {**detail, "message_id": message_id, "copy_of": self.recipient},
                )
            )
        return sent

    def _send_forward(self, rendered: Rendered, detail: dict[str, Any], partner: Partner) -> _Sent:
        signed = self.signed
        assert signed is not None
        if partner.url:
            delivery = self.notifier.post(partner.url, signed)
        else:
            name = f"report-{self.report.id}.json"
            body = json.dumps(signed, indent=2, sort_keys=True, ensure_ascii=False).encode()
            delivery, message_id = self.notifier.email(
                rendered, self.recipient, at=self.now, attachment=(name, body)
            )
            detail.update(message_id=message_id, attachment=name)
        return _Sent("forward", self.channel, self.recipient, self.language, delivery, detail)


def _noticed_items(items: list[HotlineItem]) -> list[HotlineItem]:
    """The items a notice names: the confirmed ones still online (all confirmed ones when a
    re-check found none online, so a notice is never empty)."""
    confirmed = [item for item in items if item.confirmed]
    online = [item for item in confirmed if item.online]
    return online or confirmed


def _first_recheck(hours: str) -> timedelta | None:
    first = hours.split(",")[0].strip()
    try:
        value = float(first)
    except ValueError:
        return None
    return timedelta(hours=value) if value > 0 else None
