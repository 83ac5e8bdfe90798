"""One report's notice, planned and sent: its kind (notice, repeat, escalation, forward),
recipient, channel and language (:class:`NoticePlan`), and what it is sent through: SMTP,
webhooks under the address policy, the feed signer (:class:`NoticeSender`). Used by
:class:`~amparo.hotline.notifying.Notifier`, which decides what is due and records what
was sent."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from email.errors import MessageError
from typing import Any

from amparo.errors import AmparoError
from amparo.exchanges.credentials import load_credentials
from amparo.exchanges.signing import FeedSigner, organisation_id
from amparo.hotline.context import HotlineContext
from amparo.hotline.delivery import Delivery, SmtpServer, build_email, post_json, send_email
from amparo.hotline.model import HotlineItem, UrlReport
from amparo.hotline.notices import Rendered, forward_export, render_notice, sign_forward
from amparo.hotline.partners import Partner, notice_language
from amparo.url_policy import UrlPolicy

NO_CONTACT = "no abuse contact"
KEY_ID_HEADER = "X-Amparo-Key-Id"
SIGNATURE_HEADER = "X-Amparo-Signature"
"""Webhook notices carry ``ed25519=<base64>``: the feed key's signature over the body."""


@dataclass
class Sent:
    """One message sent (or tried), as it will be recorded."""

    kind: str
    channel: str
    recipient: str
    language: str
    delivery: Delivery
    detail: dict[str, Any] = field(default_factory=dict)


class NoticeSender:
    """What a notice plan sends through: SMTP, webhooks (SSRF-checked), the feed signer."""

    def __init__(self, ctx: HotlineContext) -> None:
        self.ctx = ctx

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


class NoticePlan:
    """What one report's notice is (kind, number, recipients, channel) and how to send it."""

    def __init__(
        self,
        sender: NoticeSender,
        report: UrlReport,
        items: list[HotlineItem],
        now: datetime,
        reply_to: str,
    ) -> None:
        self.sender = sender
        self.report = report
        self.items = items
        self.now = now
        self.reply_to = reply_to
        settings = sender.ctx.settings
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
        settings = self.sender.ctx.settings
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
            signer = self.sender.signer()
            self.headers = {
                KEY_ID_HEADER: signer.key_id,
                SIGNATURE_HEADER: "ed25519=" + signer.sign(self.rendered.payload),
            }
        if self.partner is not None:
            settings = self.sender.ctx.settings
            signer = self.sender.signer()
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

    def send(self) -> list[Sent]:
        """Send (or, with nobody to send to, fail) the prepared notice; the escalation copy
        too."""
        if self.rendered is None:
            self.prepare()
        rendered, detail = self.rendered, self.detail
        assert rendered is not None
        if not self.recipient:
            return [
                Sent(
                    self.kind, self.channel, "", self.language, Delivery(False, NO_CONTACT), detail
                )
            ]
        if self.partner is not None:
            return [self._send_forward(rendered, detail, self.partner)]
        if self.channel == "webhook":
            delivery = self.sender.post(self.recipient, rendered.payload, self.headers)
        else:
            delivery, message_id = self.sender.email(rendered, self.recipient, at=self.now)
            detail["message_id"] = message_id
        sent = [Sent(self.kind, self.channel, self.recipient, self.language, delivery, detail)]
        copy_to = self.sender.ctx.settings.notice_escalation_email
        if self.kind == "escalation" and copy_to and self.sender.ctx.settings.notice_from:
            copy, message_id = self.sender.email(rendered, copy_to, at=self.now)
            sent.append(
                Sent(
                    self.kind,
                    "email",
                    copy_to,
                    self.language,
                    copy,
                    {**detail, "message_id": message_id, "copy_of": self.recipient},
                )
            )
        return sent

    def _send_forward(self, rendered: Rendered, detail: dict[str, Any], partner: Partner) -> Sent:
        signed = self.signed
        assert signed is not None
        if partner.url:
            headers = {}
            if partner.api_key:
                # The partner's Amparo takes forwards on /v1/forwards with the
                # reporter key it gave this hotline.
                try:
                    creds = load_credentials(partner.api_key, self.sender.ctx.settings)
                except AmparoError as exc:
                    delivery = Delivery(False, f"the partner's api_key: {exc.message}")
                    return Sent(
                        "forward", self.channel, self.recipient, self.language, delivery, detail
                    )
                token = (creds.get("token") or creds.get("key")) if creds else None
                if token:
                    headers["Authorization"] = f"Bearer {token}"
            delivery = self.sender.post(partner.url, signed, headers)
        else:
            name = f"report-{self.report.id}.json"
            body = json.dumps(signed, indent=2, sort_keys=True, ensure_ascii=False).encode()
            delivery, message_id = self.sender.email(
                rendered, self.recipient, at=self.now, attachment=(name, body)
            )
            detail.update(message_id=message_id, attachment=name)
        return Sent("forward", self.channel, self.recipient, self.language, delivery, detail)


def noticed_items(items: list[HotlineItem]) -> list[HotlineItem]:
    """The items a notice names: the confirmed ones still online (all confirmed ones when a
    re-check found none online, so a notice is never empty)."""
    confirmed = [item for item in items if item.confirmed]
    online = [item for item in confirmed if item.online]
    return online or confirmed
