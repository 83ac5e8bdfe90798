"""Signing in to the reviewer web UI with an API key, and out: the session cookie, and the
one-time cookie that ties the sign-in form to the browser that asked for it."""

from __future__ import annotations

import logging
import secrets

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from amparo.errors import AmparoError
from amparo.web.pages import (
    COOKIE,
    PRE_COOKIE,
    checked_post,
    is_https,
    page,
    redirect,
    same_origin,
    same_token,
    service_of,
    session_of,
    sessions_of,
)

log = logging.getLogger("amparo.web")
router = APIRouter()


@router.get("")
async def home(request: Request) -> Response:
    session = await session_of(request)
    if session is None:
        return redirect("/review/signin")
    return redirect("/review/queue" if session.may_review else "/review/entries")


@router.get("/signin")
async def signin_page(request: Request) -> Response:
    pre = secrets.token_urlsafe(24)
    response = page(request, "signin.html", {"pre": pre, "error": None})
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
        secure=is_https(request),
    )


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await request.form()
    secret = str(form.get("key") or "").strip()
    pre = str(form.get("pre") or "")
    cookie = request.cookies.get(PRE_COOKIE, "")
    error: str | None = None
    if not cookie or not same_token(pre, cookie) or not same_origin(request):
        error = "The sign-in form expired. Please try again."
    else:
        try:
            token, session = await run_in_threadpool(sessions_of(request).sign_in, secret)
        except AmparoError as exc:
            log.info("review sign-in refused: %s", exc.code)
            error = (
                "That key cannot sign in here. Check the key and that it has the reviewer scope."
            )
        else:
            response = redirect("/review/queue" if session.may_review else "/review/entries")
            response.set_cookie(
                COOKIE,
                token,
                max_age=service_of(request).settings.review_session_minutes * 60,
                path="/review",
                httponly=True,
                samesite="strict",
                secure=is_https(request),
            )
            response.delete_cookie(PRE_COOKIE, path="/review")
            return response
    fresh = secrets.token_urlsafe(24)
    response = page(request, "signin.html", {"pre": fresh, "error": error}, status=401)
    _set_pre_cookie(request, response, fresh)
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    session = await session_of(request)
    if session is not None:
        await checked_post(request, session)
        await run_in_threadpool(sessions_of(request).sign_out, request.cookies.get(COOKIE))
    response = redirect("/review/signin")
    response.delete_cookie(COOKIE, path="/review")
    return response
