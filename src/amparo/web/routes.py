"""Routes of the reviewer web UI at ``/review``: sign-in, queue, case pages, shielded media,
reveals, decisions, and the curators' page of entries disabled after false positives.

A thin shell over ``amparo.cases`` (``review.CaseService``) and ``review.sessions``. Every
response under ``/review``, error responses of the app's handlers included, carries
``SECURITY_HEADERS`` (added by the service middleware); every POST must carry the session's
CSRF token and come from this origin; media responses are never cached.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from amparo.api.service import Service
from amparo.errors import AmparoError, InputError, NotFoundError, PermissionDeniedError
from amparo.review.cases import CLASSIFICATIONS, QUEUE_STATUSES, CaseService, CaseView
from amparo.review.sessions import ReviewSessions, WebSession

log = logging.getLogger("amparo.web")

router = APIRouter(prefix="/review", include_in_schema=False)
# Row ids as the database can hold them: a larger number is a 400, not a driver overflow.
Id = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
ItemQuery = Annotated[int | None, Query(ge=1, le=2**63 - 1)]

_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))
STATIC = _HERE / "static"
STATIC_FILES = {"review.js": "text/javascript", "review.css": "text/css"}

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


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _sessions(request: Request) -> ReviewSessions:
    state = request.app.state
    sessions: ReviewSessions | None = getattr(state, "review_sessions", None)
    if sessions is None:
        service = _service(request)
        sessions = ReviewSessions(service.settings, service.amparo.store, service.keys)
        state.review_sessions = sessions
    return sessions


def _cases(request: Request) -> CaseService:
    return _service(request).amparo.cases


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


def _page(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    session: WebSession | None = None,
    status: int = 200,
) -> Response:
    ctx = {"session": session, "shortcuts": SHORTCUTS, **context}
    if session is not None and "exposure" not in ctx and session.may_review:
        ctx["exposure"] = _cases(request).exposure(session.key_name)
        decided = request.query_params.get("decided", "")
        if decided.isdigit() and len(decided) < 19:
            ctx["undo"] = _undo_offer(_cases(request), int(decided), session.key_name)
    return templates.TemplateResponse(request, name, ctx, status_code=status)


def _undo_offer(cases: CaseService, item_id: int, reviewer: str) -> dict[str, Any] | None:
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
    if until <= datetime.now(UTC):
        return None
    return {"item": item, "decision": decision, "until": until}


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def _error_page(
    request: Request, exc: AmparoError, session: WebSession | None, status: int | None = None
) -> Response:
    return _page(
        request,
        "error.html",
        {"message": exc.message, "hint": exc.hint},
        session=session,
        status=status or exc.http_status,
    )


async def _session(request: Request) -> WebSession | None:
    return await run_in_threadpool(_sessions(request).resolve, request.cookies.get(COOKIE))


def _same_origin(request: Request) -> bool:
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


async def _checked_post(request: Request, session: WebSession) -> dict[str, str]:
    """The form of a POST after the CSRF checks (token and origin); raises on failure."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    token = request.headers.get("x-csrf-token") or fields.get("csrf", "")
    if not _same_origin(request) or not hmac.compare_digest(token, session.csrf):
        raise PermissionDeniedError(
            "the request did not carry this page's security token",
            hint="reload the page and try again",
        )
    return fields


def _guarded(
    need: Callable[[WebSession], bool],
) -> Callable[[Request], Any]:
    async def check(request: Request) -> WebSession | Response:
        session = await _session(request)
        if session is None:
            return _redirect("/review/signin")
        if not need(session):
            return _error_page(
                request,
                PermissionDeniedError(
                    f"key {session.key_name!r} may not open this page",
                    hint="reviewing needs the reviewer scope; the entries page the curator scope",
                ),
                session,
            )
        return session

    return check


_reviewer = _guarded(lambda s: s.may_review)
_curator = _guarded(lambda s: s.may_curate)


# -- sign-in ---------------------------------------------------------------------------------


@router.get("")
async def home(request: Request) -> Response:
    session = await _session(request)
    if session is None:
        return _redirect("/review/signin")
    return _redirect("/review/queue" if session.may_review else "/review/entries")


@router.get("/signin")
async def signin_page(request: Request) -> Response:
    pre = secrets.token_urlsafe(24)
    response = _page(request, "signin.html", {"pre": pre, "error": None})
    _set_pre_cookie(request, response, pre)
    return response


def _set_pre_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        PRE_COOKIE,
        value,
        max_age=600,
        path="/review",
        httponly=True,
        samesite="strict",
        secure=_https(request),
    )


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await request.form()
    secret = str(form.get("key") or "").strip()
    pre = str(form.get("pre") or "")
    cookie = request.cookies.get(PRE_COOKIE, "")
    error: str | None = None
    if not cookie or not hmac.compare_digest(pre, cookie) or not _same_origin(request):
        error = "The sign-in form expired. Please try again."
    else:
        try:
            token, session = await run_in_threadpool(_sessions(request).sign_in, secret)
        except AmparoError as exc:
            log.info("review sign-in refused: %s", exc.code)
            error = (
                "That key cannot sign in here. Check the key and that it has the reviewer scope."
            )
        else:
            response = _redirect("/review/queue" if session.may_review else "/review/entries")
            response.set_cookie(
                COOKIE,
                token,
                max_age=_service(request).settings.review_session_minutes * 60,
                path="/review",
                httponly=True,
                samesite="strict",
                secure=_https(request),
            )
            response.delete_cookie(PRE_COOKIE, path="/review")
            return response
    fresh = secrets.token_urlsafe(24)
    response = _page(request, "signin.html", {"pre": fresh, "error": error}, status=401)
    _set_pre_cookie(request, response, fresh)
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    session = await _session(request)
    if session is not None:
        await _checked_post(request, session)
        await run_in_threadpool(_sessions(request).sign_out, request.cookies.get(COOKIE))
    response = _redirect("/review/signin")
    response.delete_cookie(COOKIE, path="/review")
    return response


# -- queue and cases --------------------------------------------------------------------------


@router.get("/queue")
async def queue(request: Request, status: str = "waiting") -> Response:
    session = await _reviewer(request)
    if isinstance(session, Response):
        return session
    if status not in QUEUE_STATUSES:
        status = "waiting"
    cases = await run_in_threadpool(_cases(request).queue, status, limit=200)
    return _page(
        request,
        "queue.html",
        {"cases": cases, "status": status, "statuses": list(QUEUE_STATUSES)},
        session=session,
    )


def _next_case(cases: CaseService, after: int) -> int | None:
    for case in cases.queue("waiting", limit=20):
        if case.id != after:
            return case.id
    return None


@router.get("/cases/{case_id}")
async def case_page(request: Request, case_id: Id, item: ItemQuery = None) -> Response:
    session = await _reviewer(request)
    if isinstance(session, Response):
        return session
    cases = _cases(request)
    try:
        case: CaseView = await run_in_threadpool(cases.get, case_id)
    except NotFoundError as exc:
        return _error_page(request, exc, session)
    if not case.items:
        return _error_page(request, NotFoundError(f"case {case_id} has no items"), session)
    ids = [i.id for i in case.items]
    chosen = (
        item if item in ids else next((i.id for i in case.items if i.status != "decided"), ids[0])
    )
    index = ids.index(chosen)
    current = case.items[index]
    next_case = await run_in_threadpool(_next_case, cases, case_id)
    history = await run_in_threadpool(cases.history, current.id)
    prev_url = f"/review/cases/{case_id}?item={ids[index - 1]}" if index > 0 else None
    if index + 1 < len(ids):
        next_url: str | None = f"/review/cases/{case_id}?item={ids[index + 1]}"
    else:
        next_url = f"/review/cases/{next_case}" if next_case else None
    return _page(
        request,
        "case.html",
        {
            "case": case,
            "item": current,
            "history": history,
            "classifications": CLASSIFICATIONS,
            "prev_url": prev_url,
            "next_url": next_url,
            "reveal_seconds": _service(request).settings.review_reveal_seconds,
        },
        session=session,
    )


@router.get("/items/{item_id}/media")
async def item_media(request: Request, item_id: Id, clear: int = 0) -> Response:
    session = await _session(request)
    if session is None or not session.may_review:
        return Response(status_code=401)
    try:
        rendition = await run_in_threadpool(
            lambda: _cases(request).media(
                item_id, session.key_name, clear=bool(clear), actor=session.actor
            )
        )
    except AmparoError as exc:
        return Response(exc.message, status_code=exc.http_status, media_type="text/plain")
    return Response(rendition.data, media_type=rendition.mime)


@router.post("/items/{item_id}/reveal")
async def reveal(request: Request, item_id: Id) -> Response:
    session = await _session(request)
    if session is None or not session.may_review:
        return JSONResponse({"message": "sign in again"}, status_code=401)
    try:
        await _checked_post(request, session)
        done = await run_in_threadpool(
            lambda: _cases(request).record_reveal(item_id, session.key_name, actor=session.actor)
        )
    except AmparoError as exc:
        body = {"message": exc.message, "hint": exc.hint, "code": exc.code}
        return JSONResponse(body, status_code=exc.http_status)
    return JSONResponse(
        {
            "seconds": _service(request).settings.review_reveal_seconds,
            "until": done.until.isoformat(),
            "src": f"/review/items/{item_id}/media?clear=1",
            "revealed_today": done.exposure.revealed_today,
            "daily_limit": done.exposure.daily_limit,
            "remaining": done.exposure.remaining,
        }
    )


@router.post("/items/{item_id}/decision")
async def decision(request: Request, item_id: Id) -> Response:
    session = await _reviewer(request)
    if isinstance(session, Response):
        return session
    cases = _cases(request)
    try:
        fields = await _checked_post(request, session)
        choice = fields.get("choice", "")
        kind, _, classification = choice.partition(":")
        annotations = [a for a in fields.get("annotations", "").split(",") if a.strip()]
        if not kind:
            raise InputError("choose a decision", hint="see the shortcuts: 1-4, f, e")
        if kind == "false_positive" and fields.get("confirmed") != "yes":
            # Destructive (it counts against the bank entries, and the preserved copy goes
            # after the undo grace): one keystroke only asks; a second step confirms. A plain
            # form, so it works without JavaScript too.
            item = await run_in_threadpool(cases.item, item_id)
            return _page(
                request,
                "confirm.html",
                {
                    "item": item,
                    "annotations": fields.get("annotations", ""),
                    "note": fields.get("note", ""),
                    "undo_minutes": _minutes(_service(request).settings.review_undo_seconds),
                },
                session=session,
            )
        await run_in_threadpool(
            lambda: cases.decide(
                item_id,
                kind,
                classification=classification or None,
                annotations=annotations,
                note=fields.get("note"),
                reviewer=session.key_name,
                actor=session.actor,
            )
        )
        case = await run_in_threadpool(lambda: cases.get(cases.item(item_id).case_id))
    except AmparoError as exc:
        return _error_page(request, exc, session)
    # The next page offers to undo this decision for review_undo_seconds.
    decided = f"decided={item_id}"
    if case.status == "open":
        return _redirect(f"/review/cases/{case.id}?{decided}")
    following = await run_in_threadpool(_next_case, cases, case.id)
    return _redirect(
        f"/review/cases/{following}?{decided}" if following else f"/review/queue?{decided}"
    )


@router.post("/items/{item_id}/undo")
async def undo(request: Request, item_id: Id) -> Response:
    session = await _reviewer(request)
    if isinstance(session, Response):
        return session
    cases = _cases(request)
    try:
        await _checked_post(request, session)
        await run_in_threadpool(
            lambda: cases.undo(item_id, reviewer=session.key_name, actor=session.actor)
        )
        case_id = (await run_in_threadpool(cases.item, item_id)).case_id
    except AmparoError as exc:
        return _error_page(request, exc, session)
    return _redirect(f"/review/cases/{case_id}?item={item_id}")


def _minutes(seconds: int) -> str:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"


# -- curators ---------------------------------------------------------------------------------


@router.get("/entries")
async def entries_page(request: Request) -> Response:
    session = await _curator(request)
    if isinstance(session, Response):
        return session
    entries = await run_in_threadpool(_cases(request).disabled_entries)
    return _page(request, "entries.html", {"entries": entries}, session=session)


@router.post("/entries/{entry_id}/enable")
async def reenable(request: Request, entry_id: Id) -> Response:
    session = await _curator(request)
    if isinstance(session, Response):
        return session
    try:
        await _checked_post(request, session)
        await run_in_threadpool(
            lambda: _cases(request).reenable_entry(entry_id, actor=session.actor)
        )
    except AmparoError as exc:
        return _error_page(request, exc, session)
    return _redirect("/review/entries")


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
