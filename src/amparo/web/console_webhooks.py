"""The curator console's webhook endpoints (``/console/webhooks``): list, add (the secret
shown once), edit, send a signed test event (audit-logged), disable and enable, each with its
audit trail. A thin shell over the ``Outbox`` and :class:`amparo.curation.CurationService`;
URLs go through the service's address policy, as through the API.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from amparo.actions import NewEndpoint
from amparo.actions.webhooks import check_endpoint_url
from amparo.errors import AmparoError
from amparo.names import validate_name
from amparo.review.sessions import WebSession
from amparo.web.console import PREFIX, console_error, console_page, curation_of, curator_of
from amparo.web.pages import checked_post, redirect, service_of

router = APIRouter()


# -- webhooks ---------------------------------------------------------------------------------


def _webhooks_page(
    request: Request,
    session: WebSession,
    *,
    error: AmparoError | None = None,
    form: Any = None,
    secret: str | None = None,
) -> Response:
    outbox = service_of(request).amparo.actions.outbox
    return console_page(
        request,
        "console_webhooks.html",
        {
            "endpoints": outbox.list_endpoints(),
            "error": error,
            "form": form or {},
            "secret": secret,
        },
        session=session,
        status=error.http_status if error else (201 if secret else 200),
    )


@router.get("/webhooks")
async def webhooks_page(request: Request) -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    return await run_in_threadpool(_webhooks_page, request, session)


@router.post("/webhooks")
async def create_webhook(request: Request) -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    try:
        fields = await checked_post(request, session)
    except AmparoError as exc:
        return console_error(request, exc, session)
    service = service_of(request)

    def create() -> NewEndpoint:
        url = fields.get("url", "").strip()
        check_endpoint_url(url, service.fetcher.policy)
        return service.amparo.actions.outbox.add_endpoint(
            fields.get("name", "").strip(),
            url,
            enabled=fields.get("enabled") == "yes",
            actor=session.actor,
        )

    try:
        new = await run_in_threadpool(create)
    except AmparoError as exc:
        return await run_in_threadpool(
            partial(_webhooks_page, request, session, error=exc, form=fields)
        )
    # The secret is shown once, on this answer only (never in a URL).
    return await run_in_threadpool(lambda: _webhooks_page(request, session, secret=new.secret))


def _webhook_page(
    request: Request,
    session: WebSession,
    name: str,
    *,
    error: AmparoError | None = None,
    tested: tuple[bool, str] | None = None,
) -> Response:
    endpoint = service_of(request).amparo.actions.outbox.get_endpoint(
        validate_name(name, "endpoint")
    )
    return console_page(
        request,
        "console_webhook.html",
        {
            "endpoint": endpoint,
            "trail": curation_of(request).trail(f"webhook:{endpoint.name}"),
            "error": error,
            "tested": tested,
            "saved": request.query_params.get("saved") == "1",
        },
        session=session,
        status=error.http_status if error else 200,
    )


async def _show_webhook(request: Request, session: WebSession, name: str, **extra: Any) -> Response:
    try:
        return await run_in_threadpool(lambda: _webhook_page(request, session, name, **extra))
    except AmparoError as exc:
        return console_error(request, exc, session)


@router.get("/webhooks/{name}")
async def webhook_page(request: Request, name: str) -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    return await _show_webhook(request, session, name)


async def _change_webhook(
    request: Request, name: str, *, url: bool, enabled: bool | None = None
) -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    outbox = service.amparo.actions.outbox
    try:
        fields = await checked_post(request, session)
        await run_in_threadpool(outbox.get_endpoint, validate_name(name, "endpoint"))
    except AmparoError as exc:
        return console_error(request, exc, session)

    def change() -> None:
        new_url = fields.get("url", "").strip() if url else None
        if new_url is not None:
            check_endpoint_url(new_url, service.fetcher.policy)
        switch = (fields.get("enabled") == "yes") if url else enabled
        outbox.update_endpoint(name, url=new_url, enabled=switch, actor=session.actor)

    try:
        await run_in_threadpool(change)
    except AmparoError as exc:
        return await _show_webhook(request, session, name, error=exc)
    return redirect(f"{PREFIX}/webhooks/{name}?saved=1")


@router.post("/webhooks/{name}")
async def edit_webhook(request: Request, name: str) -> Response:
    return await _change_webhook(request, name, url=True)


@router.post("/webhooks/{name}/disable")
async def disable_webhook(request: Request, name: str) -> Response:
    return await _change_webhook(request, name, url=False, enabled=False)


@router.post("/webhooks/{name}/enable")
async def enable_webhook(request: Request, name: str) -> Response:
    return await _change_webhook(request, name, url=False, enabled=True)


@router.post("/webhooks/{name}/test")
async def test_webhook(request: Request, name: str) -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    try:
        await checked_post(request, session)
        await run_in_threadpool(
            service.amparo.actions.outbox.get_endpoint, validate_name(name, "endpoint")
        )
        tested = await run_in_threadpool(
            lambda: curation_of(request).test_webhook(
                name, actor=session.actor, urls=service.fetcher.policy
            )
        )
    except AmparoError as exc:
        return console_error(request, exc, session)
    return await _show_webhook(request, session, name, tested=tested)
