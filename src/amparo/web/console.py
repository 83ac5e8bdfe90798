"""The curator console at ``/console``: sign-in with a curator or admin API key, the overview
(banks with provenance and counts, enable/disable; the review queue's size and age; reviewers'
exposure per day, counts only; finds per bank per day as charts; exchanges' status) and the
entry search. Rules and webhooks are in :mod:`amparo.web.console_rules`.

A thin shell over ``BankService`` and :class:`amparo.curation.CurationService`, with the
reviewer pages' sessions, CSRF and origin checks (:mod:`amparo.web.pages`) and the same
security headers (added by the service middleware for every response under ``/console``).
Its own session cookie, scoped to ``/console``: a reviewer's ``/review`` session opens
nothing here, and a key without the curator or admin scope cannot sign in (403).
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from markupsafe import Markup

from amparo.curation import CurationService, Overview
from amparo.errors import AmparoError, AuthenticationError, PermissionDeniedError
from amparo.hotline.charts import bar_chart
from amparo.i18n import translator
from amparo.names import validate_name
from amparo.review.sessions import WebSession
from amparo.web.pages import (
    checked_post,
    is_https,
    language_of,
    page,
    redirect,
    remember_language,
    same_origin,
    same_token,
    service_of,
    sessions_of,
)

log = logging.getLogger("amparo.web")
router = APIRouter()

PREFIX = "/console"
COOKIE = "amparo_console"
PRE_COOKIE = "amparo_console_signin"
DOMAIN = "console"
SCOPES = ("curator", "admin")
REFUSED = "That key may not use the curator console: it needs the curator or admin scope."
"""Shown (translated) when a valid key without those scopes tries to sign in."""
EXPIRED = "The sign-in form expired. Please try again."
UNKNOWN = "That key cannot sign in here. Check the key."


def curation_of(request: Request) -> CurationService:
    state = request.app.state
    found: CurationService | None = getattr(state, "curation", None)
    if found is None:
        found = CurationService(service_of(request).amparo)
        state.curation = found
    return found


def console_page(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    session: WebSession | None,
    status: int = 200,
) -> Response:
    """A console page in the request's language (``console`` catalogue, then ``review``)."""
    lang = language_of(request)
    response = page(
        request,
        name,
        {"_": translator(lang, DOMAIN), "lang": lang, "exposure": None, **context},
        session=session,
        status=status,
    )
    return remember_language(request, response, lang)


def console_error(
    request: Request, exc: AmparoError, session: WebSession | None, status: int | None = None
) -> Response:
    return console_page(
        request,
        "console_error.html",
        {"message": exc.message, "hint": exc.hint},
        session=session,
        status=status or exc.http_status,
    )


async def curator_of(request: Request) -> WebSession | Response:
    """The signed-in curator, or the response to give instead (sign-in page, 403 page)."""
    session = await run_in_threadpool(sessions_of(request).resolve, request.cookies.get(COOKIE))
    if session is None:
        return redirect(f"{PREFIX}/signin")
    if not session.may_curate:
        return console_error(
            request,
            PermissionDeniedError(
                f"key {session.key_name!r} may not use the curator console",
                hint="sign in with a key that has the curator or admin scope",
            ),
            None,
        )
    return session


# -- signing in -------------------------------------------------------------------------------


def _pre_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        PRE_COOKIE,
        value,
        max_age=600,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def _signin_form(request: Request, error: str | None, status: int) -> Response:
    pre = secrets.token_urlsafe(24)
    response = console_page(
        request, "console_signin.html", {"pre": pre, "error": error}, session=None, status=status
    )
    _pre_cookie(request, response, pre)
    return response


@router.get("/signin")
async def signin_page(request: Request) -> Response:
    return _signin_form(request, None, 200)


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await request.form()
    secret = str(form.get("key") or "").strip()
    pre = str(form.get("pre") or "")
    cookie = request.cookies.get(PRE_COOKIE, "")
    if not cookie or not same_token(pre, cookie) or not same_origin(request):
        return _signin_form(request, EXPIRED, 400)
    try:
        token, _session = await run_in_threadpool(
            lambda: sessions_of(request).sign_in(secret, scopes=SCOPES)
        )
    except PermissionDeniedError as exc:
        log.info("console sign-in refused: %s", exc.code)
        return _signin_form(request, REFUSED, 403)
    except (AuthenticationError, AmparoError) as exc:
        log.info("console sign-in refused: %s", exc.code)
        return _signin_form(request, UNKNOWN, 401)
    response = redirect(PREFIX)
    response.set_cookie(
        COOKIE,
        token,
        max_age=service_of(request).settings.review_session_minutes * 60,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    response.delete_cookie(PRE_COOKIE, path=PREFIX)
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    session = await run_in_threadpool(sessions_of(request).resolve, request.cookies.get(COOKIE))
    if session is not None:
        try:
            await checked_post(request, session)
        except AmparoError as exc:
            return console_error(request, exc, session)
        await run_in_threadpool(sessions_of(request).sign_out, request.cookies.get(COOKIE))
    response = redirect(f"{PREFIX}/signin")
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


# -- the overview -----------------------------------------------------------------------------


def _age(age: timedelta | None) -> tuple[int, int] | None:
    """(days, hours) of an age; None when there is none."""
    if age is None:
        return None
    hours = max(0, int(age.total_seconds() // 3600))
    return hours // 24, hours % 24


def _charts(overview: Overview, _: Any) -> list[tuple[str, Markup]]:
    """One bar chart per bank: lookups that matched it per day (UTC), every source."""
    charts = []
    for i, (bank, counts) in enumerate(overview.finds.items()):
        bars = [(day.isoformat(), float(n)) for day, n in zip(overview.days, counts, strict=True)]
        title = _("Finds per day in bank {bank}").format(bank=bank)
        desc = _("Lookups that matched the bank per day (UTC), from every source.")
        chart = bar_chart(f"finds-{i}", title, desc, bars, empty=_("No finds yet."))
        # bar_chart escapes every label, title and description itself.
        charts.append((title, Markup(chart)))
    return charts


def _review_charts(overview: Overview, _: Any) -> list[tuple[str, Markup]]:
    """One bar chart per bank: content the rules sent for review per day (UTC)."""
    charts = []
    for i, (bank, counts) in enumerate(overview.reviewed.items()):
        bars = [(day.isoformat(), float(n)) for day, n in zip(overview.days, counts, strict=True)]
        title = _("Sent for review per day from bank {bank}").format(bank=bank)
        desc = _("Content first found per day (UTC), as sent for review by the rules.")
        chart = bar_chart(f"reviewed-{i}", title, desc, bars, empty=_("No finds yet."))
        charts.append((title, Markup(chart)))
    return charts


@router.get("")
async def overview_page(request: Request) -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    overview = await run_in_threadpool(curation_of(request).overview)
    lang = language_of(request)
    _ = translator(lang, DOMAIN)
    return console_page(
        request,
        "console_overview.html",
        {
            "overview": overview,
            "oldest": _age(overview.queue.oldest_age),
            "charts": _charts(overview, _),
            "review_charts": _review_charts(overview, _),
        },
        session=session,
    )


async def _set_bank(request: Request, name: str, enabled: bool) -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    try:
        await checked_post(request, session)
        banks = service_of(request).amparo.banks
        bank = validate_name(name, "bank")
        await run_in_threadpool(lambda: banks.update(bank, actor=session.actor, enabled=enabled))
    except AmparoError as exc:
        return console_error(request, exc, session)
    return redirect(f"{PREFIX}#banks")


@router.post("/banks/{name}/disable")
async def disable_bank(request: Request, name: str) -> Response:
    return await _set_bank(request, name, False)


@router.post("/banks/{name}/enable")
async def enable_bank(request: Request, name: str) -> Response:
    return await _set_bank(request, name, True)


# -- entries ----------------------------------------------------------------------------------


@router.get("/entries")
async def entries_page(request: Request, q: str = "") -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    try:
        found = await run_in_threadpool(curation_of(request).search_entries, q)
    except AmparoError as exc:
        return console_error(request, exc, session)
    return console_page(
        request,
        "console_entries.html",
        {"q": q[:1000], "entries": found, "searched": bool(q.strip())},
        session=session,
    )
