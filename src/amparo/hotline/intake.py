"""Intake: a reported URL becomes a URL report (or joins the open one of the same URL).

The URL is normalised (:func:`amparo.hotline.urls.normalise`) and checked without fetching or
resolving anything: a host written as a private, loopback or otherwise non-public IP address
is refused here unless ``url_allowlist`` allows it (a name that resolves to one is refused
by the crawl's address policy). The optional contact and comment are checked for size and
shape, stored as given (trimmed), and never written to logs or the audit log.

Refusals carry fixed English messages: the public report page translates them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from amparo.errors import (
    FeedVerificationError,
    InputError,
    PermissionDeniedError,
    UrlRefusedError,
)
from amparo.exchanges.signing import key_id, load_public_key
from amparo.hotline.context import HotlineContext
from amparo.hotline.limits import ClientLimiter
from amparo.hotline.model import SUBMISSION_CHANNELS, UrlReport
from amparo.hotline.notices import verify_forward
from amparo.hotline.partners import Partner, hotline_countries, load_partners
from amparo.hotline.urls import NormalisedUrl, normalise
from amparo.i18n import DEFAULT_LANGUAGE, supported
from amparo.url_policy import UrlPolicy, is_public

MAX_CONTACT = 320
MAX_COMMENT = 2000
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ().\-/]{5,40}$")
_LOCAL_NAMES = ("localhost", "localhost.localdomain")


FORWARD_MAX_AGE = timedelta(days=30)
"""How old a forwarded report may be when it arrives (an older one is a replay, or stale)."""
FORWARD_MAX_SKEW = timedelta(hours=1)


class Intake:
    """Records reports of URLs (:meth:`report`); ``public_limiter`` counts the public report
    page's submissions per client (``report_rate_limit``, per process)."""

    def __init__(self, ctx: HotlineContext) -> None:
        self.ctx = ctx
        self.policy = UrlPolicy.from_settings(ctx.settings, resolver=ctx.resolver)
        self.public_limiter = ClientLimiter.from_settings(ctx.settings)

    def report(
        self,
        url: str,
        *,
        channel: str,
        actor: str,
        reporter: str | None = None,
        language: str = "en",
        contact: str | None = None,
        comment: str | None = None,
    ) -> tuple[UrlReport, bool]:
        """Record a report of ``url`` (normalised, checked); ``True`` when it joined an open
        report of the same URL. Audit-logged as ``hotline.report``."""
        if channel not in SUBMISSION_CHANNELS:
            raise InputError(
                f"unknown submission channel {channel!r}",
                hint="one of: " + ", ".join(SUBMISSION_CHANNELS),
            )
        target = self.checked(url)
        contact = checked_contact(contact)
        comment = checked_comment(comment)
        lang = supported(language) or DEFAULT_LANGUAGE
        ctx = self.ctx
        with ctx.store.transaction(refresh=False) as tx:
            report, joined = ctx.records.submit(
                target.url,
                target.key,
                target.host,
                at=ctx.clock(),
                channel=channel,
                reporter=reporter,
                language=lang,
                contact=contact,
                comment=comment,
            )
            tx.audit(
                actor,
                "hotline.report",
                f"url-report:{report.id}",
                {"url": report.url, "joined": joined, "channel": channel},
            )
        return report, joined

    def receive_forward(
        self, data: Mapping[str, Any] | str | bytes, *, actor: str, reporter: str | None = None
    ) -> tuple[UrlReport, bool]:
        """A report forwarded by a partner hotline (``amparo.hotline.notices`` signs it): it
        is accepted only when signed by the public key of a partner in
        ``hotline_partners_file``, and becomes a report of its URL here (crawled and verified
        by this hotline like any other), naming the sender and what it assessed. Audit-logged
        as ``hotline.report`` and ``hotline.forward.receive``."""
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                raise InputError(
                    "the forwarded report is not JSON", hint="give the report-<id>.json as sent"
                ) from None
        if not isinstance(data, Mapping):
            raise InputError("not a forwarded report", hint="give the report-<id>.json as sent")
        sender = self._sender_of(data)
        assert sender.public_key is not None
        try:
            export = verify_forward(data, sender.public_key)
        except FeedVerificationError as exc:  # the sender's fault here, not an upstream's
            raise PermissionDeniedError(
                exc.message, hint="ask the partner to send the report again, unaltered"
            ) from None
        self._addressed_here(export)
        report_facts = export.get("report")
        items = export.get("items")
        origin = export.get("from")
        if not isinstance(report_facts, dict) or not isinstance(report_facts.get("url"), str):
            raise InputError("the forwarded report names no URL", hint="ask the sender to resend")
        hotline = str(origin.get("hotline", ""))[:200] if isinstance(origin, dict) else ""
        facts = [
            {k: i.get(k) for k in ("sha256", "md5", "pdq", "classification", "jurisdiction")}
            for i in (items if isinstance(items, list) else [])[:100]
            if isinstance(i, dict)
        ]
        assessed = sorted({str(f["classification"]) for f in facts if f.get("classification")})
        comment = (
            f"forwarded by {hotline or sender.name} ({sender.country}): {len(facts)} item(s)"
            + (f", assessed {', '.join(assessed)}" if assessed else "")
        )
        # The report and the record of where it came from commit together.
        with self.ctx.store.transaction(refresh=False) as tx:
            report, joined = self.report(
                report_facts["url"],
                channel="api",
                actor=actor,
                reporter=reporter or f"forward:{sender.country}",
                language=sender.language,
                comment=comment[:MAX_COMMENT],
            )
            tx.audit(
                actor,
                "hotline.forward.receive",
                f"url-report:{report.id}",
                {
                    "from": sender.country,
                    "sender_report": report_facts.get("id"),
                    "items": facts,
                },
            )
        return report, joined

    def _addressed_here(self, export: Mapping[str, Any]) -> None:
        """A forward meant for another hotline, or sent long ago (a replay), is refused."""
        to = export.get("to")
        country = str(to.get("country", "")).upper() if isinstance(to, dict) else ""
        ours = hotline_countries(self.ctx.settings)
        if ours and country not in ours:
            raise PermissionDeniedError(
                f"the forwarded report is addressed to the hotline of {country or 'nobody'}, "
                "not this one",
                hint="a partner forwards to the hotline of the hosting country "
                "(hotline_countries names this hotline's)",
            )
        try:
            sent = datetime.fromisoformat(str(export.get("sent_at")))
        except ValueError:
            raise InputError("the forwarded report has no valid sent_at") from None
        if sent.tzinfo is None:
            raise InputError("the forwarded report's sent_at has no time zone")
        age = self.ctx.clock() - sent
        if age > FORWARD_MAX_AGE or age < -FORWARD_MAX_SKEW:
            raise PermissionDeniedError(
                f"the forwarded report was sent at {sent.isoformat()}, outside the "
                f"{FORWARD_MAX_AGE.days} days a forward is taken in",
                hint="ask the partner to forward it again",
            )

    def _sender_of(self, data: Mapping[str, Any]) -> Partner:
        """The partner whose public key signed ``data`` (by the key id it names)."""
        named = data.get("key_id")
        for partner in load_partners(self.ctx.settings).values():
            if partner.public_key is None:
                continue
            key = load_public_key(partner.public_key, what=f"partner {partner.country}'s key")
            if key_id(key) == named:
                return partner
        raise PermissionDeniedError(
            "the forwarded report is not signed by a partner hotline's key",
            hint="add the sender's public key (its `amparo feeds key`) to its entry in "
            "hotline_partners_file",
        )

    def checked(self, url: str) -> NormalisedUrl:
        """``url`` normalised, refused when its host is written as a non-public address (or is
        ``localhost``) that ``url_allowlist`` does not allow. Resolves no name."""
        target = normalise(url)
        if target.host in self.policy.allow_hosts:
            return target
        address = target.address
        if address is not None:
            if is_public(address) or any(address in n for n in self.policy.allow_networks):
                return target
        elif not (target.host in _LOCAL_NAMES or target.host.endswith(".localhost")):
            return target
        raise UrlRefusedError(
            "this address is on a private or local network, not the public web",
            hint="report pages that anyone on the internet can open",
        )


def checked_contact(contact: str | None) -> str | None:
    """The contact trimmed (None when empty), if it looks like an email address or a phone
    number and has at most ``MAX_CONTACT`` characters."""
    text = (contact or "").strip()
    if not text:
        return None
    if len(text) > MAX_CONTACT:
        raise InputError("the contact is too long", hint=f"give at most {MAX_CONTACT} characters")
    digits = sum(c.isdigit() for c in text)
    if not text.isprintable() or not (_EMAIL.match(text) or (_PHONE.match(text) and digits >= 5)):
        raise InputError(
            "the contact is not an email address or a phone number",
            hint="leave it empty to report anonymously",
        )
    return text


def checked_comment(comment: str | None) -> str | None:
    """The comment trimmed (None when empty): at most ``MAX_COMMENT`` characters, and no
    control characters but line breaks and tabs."""
    text = (comment or "").strip()
    if not text:
        return None
    if len(text) > MAX_COMMENT:
        raise InputError("the comment is too long", hint=f"give at most {MAX_COMMENT} characters")
    if any((ord(c) < 0x20 and c not in "\n\r\t") or 0x7F <= ord(c) <= 0x9F for c in text):
        raise InputError("the comment contains control characters", hint="write it as plain text")
    return text


__all__ = ["MAX_COMMENT", "MAX_CONTACT", "Intake", "checked_comment", "checked_contact"]
