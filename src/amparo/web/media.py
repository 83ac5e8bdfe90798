"""Media of a case item: the shielded rendition (blurred, greyscale) by default, the clear one
only during a reveal, which is recorded and counted against the reviewer's daily limit.
Media responses are never cached (``Cache-Control: no-store`` from ``SECURITY_HEADERS``)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from amparo.errors import AmparoError
from amparo.review.media import Rendition
from amparo.review.model import Reveal
from amparo.review.sessions import WebSession
from amparo.web.pages import Id, cases_of, checked_post, service_of, session_of

router = APIRouter()


async def media_response(request: Request, read: Callable[[WebSession], Rendition]) -> Response:
    """An item's media for a signed-in reviewer: ``read(session)`` gives the rendition (run
    in the thread pool); 401 without a reviewer session, the error as text when refused.
    Shared by case items and hotline items."""
    session = await session_of(request)
    if session is None or not session.may_review:
        return Response(status_code=401)
    try:
        rendition = await run_in_threadpool(read, session)
    except AmparoError as exc:
        return Response(exc.message, status_code=exc.http_status, media_type="text/plain")
    return Response(rendition.data, media_type=rendition.mime)


async def reveal_response(
    request: Request, src: str, reveal: Callable[[WebSession], Reveal]
) -> Response:
    """A checked POST asking for a reveal: ``reveal(session)`` records it (run in the thread
    pool); the JSON answer gives how long, the clear media's ``src`` and the exposure count
    now. Shared by case items and hotline items."""
    session = await session_of(request)
    if session is None or not session.may_review:
        return JSONResponse({"message": "sign in again"}, status_code=401)
    try:
        await checked_post(request, session)
        done = await run_in_threadpool(reveal, session)
    except AmparoError as exc:
        body = {"message": exc.message, "hint": exc.hint, "code": exc.code}
        return JSONResponse(body, status_code=exc.http_status)
    return JSONResponse(
        {
            "seconds": service_of(request).settings.review_reveal_seconds,
            "until": done.until.isoformat(),
            "src": src,
            "revealed_today": done.exposure.revealed_today,
            "daily_limit": done.exposure.daily_limit,
            "remaining": done.exposure.remaining,
        }
    )


@router.get("/items/{item_id}/media")
async def item_media(request: Request, item_id: Id, clear: int = 0) -> Response:
    return await media_response(
        request,
        lambda session: cases_of(request).media(
            item_id, session.key_name, clear=bool(clear), actor=session.actor
        ),
    )


@router.post("/items/{item_id}/reveal")
async def reveal(request: Request, item_id: Id) -> Response:
    return await reveal_response(
        request,
        f"/review/items/{item_id}/media?clear=1",
        lambda session: cases_of(request).record_reveal(
            item_id, session.key_name, actor=session.actor
        ),
    )
