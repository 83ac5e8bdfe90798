"""How notices travel: email through SMTP (stdlib :mod:`smtplib`; STARTTLS when the server
offers it, or TLS from the first byte), and JSON POSTed to a webhook or a partner hotline
through the address policy against SSRF, under one deadline (:mod:`amparo.fetch`).

Sending never raises for a receiver that is down or refuses: a :class:`Delivery` says how it
went, and :mod:`amparo.hotline.notifying` records it. Pure: no storage.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import urlsplit

import httpx

from amparo.config import Settings
from amparo.errors import ConfigError, FetchError, UrlRefusedError
from amparo.exchanges.credentials import load_credentials
from amparo.exchanges.signing import canonical
from amparo.fetch import pinned_request, run_with_deadline, tls_context
from amparo.hotline.notices import Rendered
from amparo.url_policy import UrlPolicy

USER_AGENT = "Amparo-Hotline/1"


@dataclass(frozen=True)
class Delivery:
    """How sending went: ``ok``, the error when not, and the answer (message id, HTTP
    status, the SMTP server's refusals)."""

    ok: bool
    error: str | None = None
    answer: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SmtpServer:
    """Where notices are sent from: ``smtp_url`` (``smtp://`` with STARTTLS when the server
    offers it, ``smtps://`` for TLS from the first byte) and the resolved credentials."""

    host: str
    port: int
    implicit_tls: bool
    timeout: float
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, environ: Mapping[str, str] | None = None
    ) -> SmtpServer:
        """Parse ``smtp_url`` and read the credentials their references point at (a
        :class:`ConfigError` or :class:`~amparo.errors.CredentialsError` otherwise)."""
        parts = urlsplit(settings.smtp_url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(
                f"smtp_url {settings.smtp_url!r} is not smtp://host:port or smtps://host:port"
            )
        try:
            port = parts.port or (465 if parts.scheme == "smtps" else 25)
        except ValueError:
            raise ConfigError(f"smtp_url {settings.smtp_url!r} has an invalid port") from None
        username: str | None = settings.smtp_username or None
        password: str | None = None
        if username and username.partition(":")[0] in ("env", "file"):
            creds = load_credentials(username, settings, environ=environ)
            username = (
                (creds.get("user") or creds.get("username") or creds.get("token"))
                if creds
                else None
            )
        if settings.smtp_password:
            creds = load_credentials(settings.smtp_password, settings, environ=environ)
            password = (creds.get("password") or creds.get("token")) if creds else None
        return cls(
            parts.hostname,
            port,
            parts.scheme == "smtps",
            settings.smtp_timeout_seconds,
            username,
            password,
        )

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


def build_email(
    rendered: Rendered,
    *,
    sender: str,
    to: str,
    reply_to: str,
    at: datetime,
    attachment: tuple[str, bytes] | None = None,
) -> EmailMessage:
    """The email of a notice: text and HTML alternatives, ``Message-ID``, ``Date``,
    ``Reply-To``; a forward's ``attachment`` is its JSON export (never media)."""
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = to
    message["Reply-To"] = reply_to
    message["Date"] = format_datetime(at)
    domain = sender.rpartition("@")[2] or None
    message["Message-ID"] = make_msgid("amparo", domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    if attachment is not None:
        name, body = attachment
        message.add_attachment(body, maintype="application", subtype="json", filename=name)
    # Last: setting the body drops the Content-* headers set before it.
    message["Content-Language"] = rendered.language.replace("_", "-")
    return message


def send_email(server: SmtpServer, message: EmailMessage) -> Delivery:
    """Send ``message``; never raises for a server that is down or refuses (the
    :class:`Delivery` says why)."""
    context = ssl.create_default_context()
    answer: dict[str, Any] = {"server": server.name, "message_id": message["Message-ID"]}
    try:
        client: smtplib.SMTP
        if server.implicit_tls:
            client = smtplib.SMTP_SSL(
                server.host, server.port, timeout=server.timeout, context=context
            )
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
        with client:
            client.ehlo()
            if not server.implicit_tls and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
                answer["starttls"] = True
            if server.username and server.password:
                client.login(server.username, server.password)
            refused = client.send_message(message)
        if refused:
            answer["refused"] = {
                k: [v[0], v[1].decode(errors="replace")] for k, v in refused.items()
            }
        return Delivery(True, None, answer)
    except smtplib.SMTPRecipientsRefused as exc:
        return Delivery(
            False,
            f"the SMTP server {server.name} refused every recipient: {', '.join(exc.recipients)}",
            answer,
        )
    except smtplib.SMTPResponseException as exc:
        reason = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return Delivery(
            False, f"the SMTP server {server.name} answered {exc.smtp_code} {reason}", answer
        )
    except (smtplib.SMTPException, OSError) as exc:
        detail = str(exc) or type(exc).__name__
        return Delivery(
            False,
            f"cannot send through the SMTP server {server.name}: {type(exc).__name__}: {detail}",
            answer,
        )


def post_json(
    url: str,
    payload: Mapping[str, Any],
    *,
    urls: UrlPolicy,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> Delivery:
    """POST ``payload`` as JSON to ``url`` through the address policy (the connection goes
    to the checked address), all of it within ``timeout`` seconds; 2xx is success."""
    body = canonical(payload)  # the bytes a webhook signature covers

    async def send() -> int:
        target = await urls.check_async(url)
        async with httpx.AsyncClient(
            verify=tls_context(), follow_redirects=False, trust_env=False, timeout=timeout
        ) as client:
            request = pinned_request(
                client,
                "POST",
                url,
                target,
                {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
                body,
            )
            response = await client.send(request, stream=True)
            await response.aclose()
            return response.status_code

    try:
        status = run_with_deadline(timeout, "sending the notice", send)
    except UrlRefusedError as exc:
        return Delivery(False, f"refused by the address policy: {exc.message}")
    except FetchError as exc:
        return Delivery(False, exc.message)
    except httpx.HTTPError as exc:
        return Delivery(False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if 200 <= status < 300:
        return Delivery(True, None, {"status": status})
    return Delivery(False, f"the receiver answered HTTP {status}", {"status": status})
