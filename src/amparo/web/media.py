"""Media of a case item: the shielded rendition (blurred, greyscale) by default, the clear one
only during a reveal, which is recorded and counted against the reviewer's daily limit.
Media responses are never cached (``Cache-Control: no-store`` from ``SECURITY_HEADERS``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from amparo.errors import AmparoError
from amparo.web.pages import Id, cases_of, checked_post, service_of, session_of

router = APIRouter()


@router.get("/items/{item_id}/media")
async def item_media(request: Request, item_id: Id, clear: int = 0) -> Response:
    session = await session_of(request)
    if session is None or not session.may_review:
        return Response(status_code=401)
    try:
        rendition = await run_in_threadpool(
            lambda: cases_of(request).media(
                item_id, session.key_name, clear=bool(clear), actor=session.actor
            )
        )
    except AmparoError as exc:
        return Response(exc.message, status_code=exc.http_status, media_type="text/plain")
    return Response(rendition.data, media_type=rendition.mime)


@router.post("/items/{item_id}/reveal")
async def reveal(request: Request, item_id: Id) -> Response:
    session = await session_of(request)
    if session is None or not session.may_review:
        return JSONResponse({"message": "sign in again"}, status_code=401)
    try:
        await checked_post(request, session)
        done = await run_in_threadpool(
            lambda: cases_of(request).record_reveal(item_id, session.key_name, actor=session.actor)
        )
    except AmparoError as exc:
        body = {"message": exc.message, "hint": exc.hint, "code": exc.code}
        return JSONResponse(body, status_code=exc.http_status)
    return JSONResponse(
        {
            "seconds": service_of(request).settings.review_reveal_seconds,
            "until": done.until.isoformat(),
            "src": f"/review/items/{item_id}/media?clear=1",
            "revealed_today": done.exposure.revealed_today,
            "daily_limit": done.exposure.daily_limit,
            "remaining": done.exposure.remaining,
        }
    )
