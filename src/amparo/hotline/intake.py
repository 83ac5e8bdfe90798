"""Intake: a reported URL becomes a URL report (or joins the open one of the same URL).

The URL is normalised (:func:`amparo.hotline.urls.normalise`) and checked without fetching or
resolving anything: a host written as a private, loopback or otherwise non-public IP address
is refused here unless ``url_allowlist`` allows it (a name that resolves to one is refused
by the crawl's address policy). The optional contact and comment are checked for size and
shape, stored as given (trimmed), and never written to logs or the audit log.

Refusals carry fixed English messages: the public report page translates them.
"""

from __future__ import annotations

import re

from amparo.errors import InputError, UrlRefusedError
from amparo.hotline.context import HotlineContext
from amparo.hotline.limits import ClientLimiter
from amparo.hotline.model import SUBMISSION_CHANNELS, UrlReport
from amparo.hotline.urls import NormalisedUrl, normalise
from amparo.i18n import DEFAULT_LANGUAGE, supported
from amparo.url_policy import UrlPolicy, is_public

MAX_CONTACT = 320
MAX_COMMENT = 2000
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ().\-/]{5,40}$")
_LOCAL_NAMES = ("localhost", "localhost.localdomain")


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
