"""The public report page, ``/report``: anyone may report the address of a page showing child
sexual abuse material. No account, anonymous by default, an optional contact; never an upload.

The form is tied to the browser that asked for it by a one-time token in a short-lived cookie
(path ``/report``, HttpOnly, SameSite=Strict) and must come from this origin; each client
(its address, hashed; see :mod:`amparo.hotline.limits`) may send ``report_rate_limit``
reports. The page speaks Spanish, Brazilian Portuguese and English (``?lang=``, remembered in
a cookie, else the browser's ``Accept-Language``; gettext domain ``report``). Bad input
re-renders the form with the reason (400).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import math
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from amparo.errors import AmparoError, InputError, RateLimitedError
from amparo.hotline.intake import MAX_COMMENT, MAX_CONTACT, Intake
from amparo.hotline.urls import MAX_URL_LENGTH
from amparo.i18n import LANGUAGES, negotiate, supported, translator
from amparo.web.pages import is_https, redirect, same_origin, service_of, templates

log = logging.getLogger("amparo.web")
router = APIRouter()

FORM_COOKIE = "amparo_report_form"
LANG_COOKIE = "amparo_lang"
FORM_SECONDS = 1800
"""How long a form stays valid: time to write a comment, short enough to be one visit."""
DOMAIN = "report"
ACTOR = "public"
"""How the audit log names the page's anonymous reporters."""
CSS = Path(__file__).parent / "static" / "report.css"


def language_of(request: Request, chosen: str | None = None) -> str:
    """The page's language: ``chosen`` (a form field), ``?lang=``, the ``amparo_lang``
    cookie, else the browser's ``Accept-Language``."""
    for candidate in (
        chosen,
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
    ):
        if supported(candidate):
            return negotiate(None, chosen=candidate)
    return negotiate(request.headers.get("accept-language"))


def intake_of(request: Request) -> Intake:
    return service_of(request).amparo.hotline.intake


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
    token = secrets.token_urlsafe(24)
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
        max_age=FORM_SECONDS,
        path="/report",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    return response


def _refused_form(request: Request, lang: str, values: dict[str, str], *, status: int) -> Response:
    """The form again, with a fresh token: the one sent was missing, stale or not ours."""
    _ = translator(lang, DOMAIN)
    error = {
        "message": _("The form expired or did not come from this page."),
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
    values = {k: fields.get(k, "") for k in ("url", "contact", "comment")}
    cookie = request.cookies.get(FORM_COOKIE, "")
    token = fields.get("csrf", "")
    if not cookie or not hmac.compare_digest(token, cookie) or not same_origin(request):
        return _refused_form(request, lang, values, status=403)
    intake = intake_of(request)
    client = request.client.host if request.client else None
    try:
        # Only recorded reports count: a reporter correcting a mistyped URL is not flooding.
        intake.public_limiter.check(client)
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
            values["url"],
            channel="web",
            actor=ACTOR,
            language=lang,
            contact=values["contact"],
            comment=values["comment"],
        )
    except InputError as exc:
        error = {"message": _(exc.message), "hint": _(exc.hint) if exc.hint else ""}
        return _form(request, lang, values=values, error=error, status=exc.http_status)
    except AmparoError as exc:
        log.warning("a public report could not be recorded: %s", exc.code)
        error = {
            "message": _("Your report could not be recorded right now."),
            "hint": _("Please try again in a few minutes."),
        }
        return _form(request, lang, values=values, error=error, status=exc.http_status)
    # Concurrent reports of one client: this one is recorded, the next one waits.
    with contextlib.suppress(RateLimitedError):
        intake.public_limiter.hit(client)
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
