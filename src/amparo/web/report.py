"""The public report page, ``/report``: anyone may report the address of a page showing child
sexual abuse material. No account, anonymous by default, an optional contact; never an upload.

The form is tied to the browser that asked for it by a token in a cookie (path ``/report``,
HttpOnly, SameSite=Strict) that the form's hidden field must repeat, and must come from this
origin. The token is the server's: an HMAC, under a key kept in ``<home>/keys/report-form.key``
(shared by the worker processes, kept across restarts), of a random nonce and an expiry
(``FORM_SECONDS``), so a pair made up by someone else, or one past its half hour, is refused. Each
client (its address, hashed; see :mod:`amparo.hotline.limits`) may send ``report_rate_limit``
reports; a report is counted before it is recorded (concurrent posts cannot all pass) and
given back when intake refuses its input. The page speaks Spanish, Brazilian Portuguese and
English (``?lang=``, remembered in a cookie, else the browser's ``Accept-Language``; gettext
domain ``report``). Bad input re-renders the form with the reason (400), showing each field
again cut to the most it may hold.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import secrets
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from amparo.errors import AmparoError, InputError, RateLimitedError
from amparo.hotline.intake import MAX_COMMENT, MAX_CONTACT, Intake
from amparo.hotline.urls import MAX_URL_LENGTH
from amparo.i18n import LANGUAGES, supported, translator
from amparo.keyfile import Ed25519KeyFile
from amparo.web.pages import (
    LANG_COOKIE,
    is_https,
    language_of,
    redirect,
    same_origin,
    same_token,
    service_of,
    templates,
)

log = logging.getLogger("amparo.web")
router = APIRouter()

FORM_COOKIE = "amparo_report_form"
FORM_SECONDS = 1800
"""How long a form stays valid: time to write a comment, short enough to be one visit."""
FIELD_LIMITS = {"url": MAX_URL_LENGTH, "contact": MAX_CONTACT, "comment": MAX_COMMENT}
"""The form's fields, and how much of each a refused form shows again."""
DOMAIN = "report"
ACTOR = "public"
"""How the audit log names the page's anonymous reporters."""
CSS = Path(__file__).parent / "static" / "report.css"


def intake_of(request: Request) -> Intake:
    return service_of(request).amparo.hotline.intake


class FormTokens:
    """Makes and verifies the form's tokens: ``NONCE.EXPIRY.MAC``, the MAC an HMAC-SHA256 of
    nonce and expiry (Unix seconds) under a key derived from an Ed25519 key file (created on
    first use), so every worker process of one installation accepts the others' forms."""

    def __init__(self, path: Path) -> None:
        self._file = Ed25519KeyFile(
            path, what="report form key", setting="home (it lives in <home>/keys)"
        )
        self._secret: bytes | None = None

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            raw = self._file.private_key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            self._secret = hashlib.sha256(b"amparo report form v1\0" + raw).digest()
        return self._secret

    def _mac(self, nonce: str, expiry: str) -> str:
        digest = hmac.new(self.secret, f"{nonce}.{expiry}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def make(self, now: datetime) -> str:
        nonce = secrets.token_urlsafe(18)
        expiry = str(int(now.timestamp()) + FORM_SECONDS)
        return f"{nonce}.{expiry}.{self._mac(nonce, expiry)}"

    def verify(self, token: str, now: datetime) -> str | None:
        """Why ``token`` is refused (``"forged"``, ``"expired"``), or None when it is good."""
        parts = token.split(".")
        if len(parts) != 3:
            return "forged"
        nonce, expiry, mac = parts
        if not (nonce and expiry.isascii() and expiry.isdigit() and len(expiry) < 16):
            return "forged"
        if not same_token(mac, self._mac(nonce, expiry)):
            return "forged"
        if int(expiry) <= now.timestamp():
            return "expired"
        return None


_tokens: dict[Path, FormTokens] = {}
_tokens_lock = threading.Lock()


def tokens_of(request: Request) -> FormTokens:
    path = service_of(request).settings.home / "keys" / "report-form.key"
    with _tokens_lock:
        if path not in _tokens:
            _tokens[path] = FormTokens(path)
        return _tokens[path]


def _now(request: Request) -> datetime:
    return intake_of(request).ctx.clock()


def _render(
    request: Request,
    name: str,
    lang: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> Response:
    settings = service_of(request).settings
    ctx = {
        "_": translator(lang, DOMAIN),
        "lang": lang,
        "html_lang": lang.replace("_", "-"),
        "languages": LANGUAGES,
        "hotline_name": settings.hotline_name,
        **context,
    }
    response = templates.TemplateResponse(request, name, ctx, status_code=status)
    chosen = supported(request.query_params.get("lang"))
    if chosen:
        response.set_cookie(
            LANG_COOKIE,
            chosen,
            max_age=365 * 24 * 3600,
            path="/report",
            httponly=True,
            samesite="strict",
            secure=is_https(request),
        )
    return response


def _form(
    request: Request,
    lang: str,
    *,
    values: dict[str, str] | None = None,
    error: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    token = tokens_of(request).make(_now(request))
    response = _render(
        request,
        "report.html",
        lang,
        {
            "token": token,
            "values": values or {},
            "error": error,
            "max_url": MAX_URL_LENGTH,
            "max_contact": MAX_CONTACT,
            "max_comment": MAX_COMMENT,
        },
        status=status,
    )
    response.set_cookie(
        FORM_COOKIE,
        token,
        max_age=FORM_SECONDS,  # the token's own expiry holds for a client that keeps it longer
        path="/report",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    return response


def _refused_form(
    request: Request, lang: str, values: dict[str, str], *, status: int, expired: bool = False
) -> Response:
    """The form again, with a fresh token: the one sent was missing, stale or not ours."""
    _ = translator(lang, DOMAIN)
    error = {
        "message": _("The form expired.")
        if expired
        else _("The form expired or did not come from this page."),
        "hint": _("Please check your report and send it again."),
    }
    return _form(request, lang, values=values, error=error, status=status)


@router.get("/report")
async def report_page(request: Request) -> Response:
    return _form(request, language_of(request))


@router.post("/report")
async def report(request: Request) -> Response:
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        # The form sends text fields only; a multipart body (a file) is not even read.
        return _refused_form(request, language_of(request), {}, status=415)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    lang = language_of(request, fields.get("lang"))
    _ = translator(lang, DOMAIN)
    sent = {k: fields.get(k, "") for k in FIELD_LIMITS}
    # What a refused form shows again: never more than a field may hold (a 1 MB comment
    # does not come back as a 1 MB page); intake judges the values as sent.
    values = {k: v[: FIELD_LIMITS[k]] for k, v in sent.items()}
    cookie = request.cookies.get(FORM_COOKIE, "")
    token = fields.get("csrf", "")
    if not cookie or not same_token(token, cookie) or not same_origin(request):
        return _refused_form(request, lang, values, status=403)
    problem = tokens_of(request).verify(token, _now(request))
    if problem is not None:
        return _refused_form(request, lang, values, status=403, expired=problem == "expired")
    intake = intake_of(request)
    client = request.client.host if request.client else None
    try:
        # Counted now, in one step with the check: concurrent posts cannot all pass it.
        hit = intake.public_limiter.take(client)
    except RateLimitedError as exc:
        minutes = max(1, math.ceil(exc.retry_after / 60))
        error = {
            "message": _("You have sent several reports in a short time."),
            "hint": _("Please wait %(minutes)s minutes and try again.") % {"minutes": minutes},
        }
        response = _form(request, lang, values=values, error=error, status=429)
        response.headers["Retry-After"] = str(math.ceil(exc.retry_after))
        return response
    try:
        await run_in_threadpool(
            intake.report,
            sent["url"],
            channel="web",
            actor=ACTOR,
            language=lang,
            contact=sent["contact"],
            comment=sent["comment"],
        )
    except InputError as exc:
        # Only recorded reports count: a reporter correcting a mistyped URL is not flooding.
        intake.public_limiter.give_back(hit)
        error = {"message": _(exc.message), "hint": _(exc.hint) if exc.hint else ""}
        return _form(request, lang, values=values, error=error, status=exc.http_status)
    except AmparoError as exc:
        intake.public_limiter.give_back(hit)
        log.warning("a public report could not be recorded: %s", exc.code)
        error = {
            "message": _("Your report could not be recorded right now."),
            "hint": _("Please try again in a few minutes."),
        }
        return _form(request, lang, values=values, error=error, status=exc.http_status)
    response = redirect(f"/report/thanks?lang={lang}")
    response.delete_cookie(FORM_COOKIE, path="/report")
    return response


@router.get("/report/thanks")
async def thanks(request: Request) -> Response:
    return _render(request, "report_thanks.html", language_of(request), {})


@router.get("/report/static/report.css")
async def stylesheet() -> Response:
    response = FileResponse(CSS, media_type="text/css")
    response.headers["Cache-Control"] = "no-cache"
    return response
