"""What every page of the reviewer web UI shares: templates, the signed-in session, the CSRF
and origin checks of a POST, scope guards, and the static files.

Every response under ``/review``, error responses of the app's handlers included, carries
``SECURITY_HEADERS`` (added by the service middleware); every POST must carry the session's
CSRF token and come from this origin (:func:`checked_post`).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from amparo.api.service import Service
from amparo.clock import utc_now
from amparo.errors import AmparoError, PermissionDeniedError
from amparo.review.cases import CaseService
from amparo.review.sessions import ReviewSessions, WebSession

log = logging.getLogger("amparo.web")

router = APIRouter()
"""The static files; the pages' routes are in :mod:`amparo.web.signin`,
:mod:`amparo.web.cases` and :mod:`amparo.web.media`."""
# Row ids as the database can hold them: a larger number is a 400, not a driver overflow.
Id = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
ItemQuery = Annotated[int | None, Query(ge=1, le=2**63 - 1)]

_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))
STATIC = _HERE / "static"
STATIC_FILES = {"review.js": "text/javascript", "review.css": "text/css", "hotline.css": "text/css"}

COOKIE = "amparo_review"
PRE_COOKIE = "amparo_review_signin"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "media-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cache-Control": "no-store",
}
SHORTCUTS = (
    ("1 2 3 4", "confirm as A1, A2, B1, B2"),
    ("f", "false positive (asks to confirm: Enter; Esc cancels)"),
    ("e", "escalate"),
    ("r", "reveal the media for a few seconds (logged, counted)"),
    ("u", "undo your last decision (for a while after it)"),
    ("j / k", "next / previous item"),
    ("n", "focus the note"),
    ("?", "show or hide these shortcuts"),
)


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def sessions_of(request: Request) -> ReviewSessions:
    state = request.app.state
    sessions: ReviewSessions | None = getattr(state, "review_sessions", None)
    if sessions is None:
        service = service_of(request)
        sessions = ReviewSessions(service.settings, service.amparo.store, service.keys)
        state.review_sessions = sessions
    return sessions


def cases_of(request: Request) -> CaseService:
    return service_of(request).amparo.cases


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def page(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    session: WebSession | None = None,
    status: int = 200,
) -> Response:
    ctx = {"session": session, "shortcuts": SHORTCUTS, **context}
    if session is not None and "exposure" not in ctx and session.may_review:
        ctx["exposure"] = cases_of(request).exposure(session.key_name)
        decided = request.query_params.get("decided", "")
        if decided.isdigit() and len(decided) < 19:
            ctx["undo"] = undo_offer(cases_of(request), int(decided), session.key_name)
    return templates.TemplateResponse(request, name, ctx, status_code=status)


def undo_offer(cases: CaseService, item_id: int, reviewer: str) -> dict[str, Any] | None:
    """What the page offers to undo after a decision: the reviewer's own latest decision on
    the item, while ``review_undo_seconds`` have not passed."""
    try:
        item = cases.item(item_id)
    except AmparoError:
        return None
    decision = item.decision
    if decision is None or decision.reviewer != reviewer:
        return None
    until = cases.undo_until(decision)
    if until <= utc_now():
        return None
    return {"item": item, "decision": decision, "until": until}


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def error_page(
    request: Request, exc: AmparoError, session: WebSession | None, status: int | None = None
) -> Response:
    return page(
        request,
        "error.html",
        {"message": exc.message, "hint": exc.hint},
        session=session,
        status=status or exc.http_status,
    )


async def session_of(request: Request) -> WebSession | None:
    return await run_in_threadpool(sessions_of(request).resolve, request.cookies.get(COOKIE))


def same_origin(request: Request) -> bool:
    """Whether the browser says the request comes from our own pages. Under
    ``Referrer-Policy: no-referrer`` browsers send ``Origin: null`` on POSTs, so the fetch
    metadata header decides where it is present; the CSRF token is checked in any case."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def checked_post(request: Request, session: WebSession) -> dict[str, str]:
    """The form of a POST after the CSRF checks (token and origin); raises on failure."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    token = request.headers.get("x-csrf-token") or fields.get("csrf", "")
    if not same_origin(request) or not hmac.compare_digest(token, session.csrf):
        raise PermissionDeniedError(
            "the request did not carry this page's security token",
            hint="reload the page and try again",
        )
    return fields


def guarded(
    need: Callable[[WebSession], bool],
) -> Callable[[Request], Any]:
    async def check(request: Request) -> WebSession | Response:
        session = await session_of(request)
        if session is None:
            return redirect("/review/signin")
        if not need(session):
            return error_page(
                request,
                PermissionDeniedError(
                    f"key {session.key_name!r} may not open this page",
                    hint="reviewing needs the reviewer scope; the entries page the curator scope",
                ),
                session,
            )
        return session

    return check


reviewer_of = guarded(lambda s: s.may_review)
curator_of = guarded(lambda s: s.may_curate)


# -- static files -----------------------------------------------------------------------------


@router.get("/static/{name}")
async def static(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return Response(status_code=404)
    response = FileResponse(STATIC / name, media_type=media_type)
    # The middleware adds the rest of SECURITY_HEADERS; static files may be revalidated.
    response.headers["Cache-Control"] = "no-cache"
    return response
