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
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from amparo.api.service import Service
from amparo.clock import utc_now
from amparo.errors import AmparoError, PermissionDeniedError
from amparo.i18n import DEFAULT_LANGUAGE, LANGUAGES, Translate, negotiate, supported, translator
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
STATIC_FILES = {
    "review.js": "text/javascript",
    "review.css": "text/css",
    "hotline.css": "text/css",
    "console.css": "text/css",
}

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


DOMAIN = "review"
"""The gettext domain of the reviewer pages' own text."""
LANG_COOKIE = "amparo_lang"
STATUS_LABELS = {
    "waiting": "waiting",
    "open": "open",
    "escalated": "escalated",
    "decided": "decided",
    "all": "all",
    "pending": "pending",
}
"""English labels of queue filters and case and item statuses (translated at render)."""
DECISION_LABELS = {"confirm": "confirm", "false_positive": "false positive", "escalate": "escalate"}
"""English labels of decision kinds (translated at render)."""
OWN_SWITCHER = frozenset({"hotline_queue.html", "hotline_stats.html"})
"""Pages with a language switcher of their own: the header shows none there."""


def _untranslated(message: str) -> str:
    return message


# A template rendered without a translator still renders (in English).
templates.env.globals.setdefault("_", _untranslated)


def language_of(request: Request, chosen: str | None = None) -> str:
    """The language of a page (the reviewer pages and the public report page): ``chosen``
    (e.g. a form field), else ``?lang``, else the ``amparo_lang`` cookie, the first of them
    that names a supported language; else the browser's ``Accept-Language``, else English."""
    for candidate in (chosen, request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if supported(candidate):
            return negotiate(None, chosen=candidate)
    return negotiate(request.headers.get("accept-language"))


def remember_language(request: Request, response: Response, lang: str) -> Response:
    """Remember an explicit ``?lang`` choice for the following pages; say the language."""
    asked = supported(request.query_params.get("lang"))
    if asked and asked == lang:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 86400, path="/", httponly=True, samesite="lax"
        )
    response.headers["Content-Language"] = lang.replace("_", "-")
    return response


def _first_of(own: Translate, review: Translate) -> Translate:
    """A page's own translator (another domain), falling back to the reviewer pages' one for
    the text of ``base.html``."""

    def either(message: str) -> str:
        found = own(message)
        return found if found != message else review(message)

    return either


def _language_links(request: Request) -> list[tuple[str, str, str]]:
    """(code, name, URL of this page in that language) for the switcher; none for the answer
    to a POST, whose address cannot be opened again."""
    if request.method != "GET":
        return []
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return [
        (code, name, f"{request.url.path}?{urlencode([*kept, ('lang', code)])}")
        for code, name in LANGUAGES.items()
    ]


def _duration(seconds: int, _: Translate) -> str:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return _("1 minute") if minutes == 1 else _("{n} minutes").format(n=minutes)
    return _("{n} seconds").format(n=seconds)


def page(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    session: WebSession | None = None,
    status: int = 200,
) -> Response:
    """A reviewer page. Its text is in the language of ``context``'s ``lang`` and ``_`` where
    the caller gives them, else in the one negotiated from the request (:func:`language_of`)."""
    own: Translate | None = context.get("_")
    lang = (
        language_of(request)
        if own is None
        else supported(str(context.get("lang") or "")) or DEFAULT_LANGUAGE
    )
    review = translator(lang, DOMAIN)
    _ = review if own is None or own == review else _first_of(own, review)
    ctx = {
        "session": session,
        "shortcuts": [(keys, _(what)) for keys, what in SHORTCUTS],
        "lang": lang,
        "html_lang": lang.replace("_", "-"),
        "languages": LANGUAGES,
        "language_links": [] if name in OWN_SWITCHER else _language_links(request),
        "review_status": lambda value: _(STATUS_LABELS[value]) if value in STATUS_LABELS else value,
        "decision_name": lambda kind: _(DECISION_LABELS.get(kind, kind.replace("_", " "))),
        **context,
        "_": _,
    }
    if "undo_minutes" in ctx and lang != DEFAULT_LANGUAGE:
        ctx["undo_minutes"] = _duration(service_of(request).settings.review_undo_seconds, _)
    if session is not None and "exposure" not in ctx and session.may_review:
        ctx["exposure"] = cases_of(request).exposure(session.key_name)
        decided = request.query_params.get("decided", "")
        if decided.isdigit() and len(decided) < 19:
            ctx["undo"] = undo_offer(cases_of(request), int(decided), session.key_name)
    response = templates.TemplateResponse(request, name, ctx, status_code=status)
    if own is None:
        remember_language(request, response, lang)
    return response


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


def same_token(given: str, expected: str) -> bool:
    """Whether a token from a form, header or cookie equals ``expected``, in constant time.

    ``hmac.compare_digest`` raises TypeError on a ``str`` that is not ASCII, and anyone can
    send ``é`` as a token: compared as UTF-8 bytes, such a token is a plain mismatch (the page's
    4xx refusal), never a 500. ``surrogatepass`` keeps a lone surrogate from raising too."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


async def checked_post(request: Request, session: WebSession) -> dict[str, str]:
    """The form of a POST after the CSRF checks (token and origin); raises on failure."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    token = request.headers.get("x-csrf-token") or fields.get("csrf", "")
    if not same_origin(request) or not same_token(token, session.csrf):
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
