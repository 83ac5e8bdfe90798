"""The FastAPI app factory: ``create_app(settings)`` builds one app over one installation."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import re
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client.multiprocess import mark_process_dead
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from amparo import __version__, web
from amparo.actions.webhooks import deliver_in_background
from amparo.api import hma, system, v1
from amparo.api.background import ExchangeLoop
from amparo.api.logs import flush_logs
from amparo.api.metrics import ExchangeCollector
from amparo.api.metrics_hotline import HotlineCollector
from amparo.api.middleware import RouteTemplates, ServiceMiddleware
from amparo.api.schemas import ErrorBody
from amparo.api.service import Service
from amparo.api.v1.lookup_lane import fast_lookup
from amparo.app import Amparo
from amparo.clock import Monotonic, monotonic
from amparo.config import Settings, load_settings
from amparo.errors import AmparoError, AuthenticationError, InternalError, RateLimitedError

log = logging.getLogger("amparo.api")

_ERRORS = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "Bad input (malformed hash, bad parameter, bad media).",
        401: "No API key, or an unknown or revoked one.",
        403: "The key lacks the scope this needs.",
        404: "No such bank, entry or route.",
        409: "Conflicts with what exists (e.g. a bank of that name).",
        413: "Upload, body or image over a limit (or a decompression bomb).",
        415: "Not media Amparo can hash.",
        422: "A url= that could not be fetched.",
        429: "The key is over its rate limit; see Retry-After.",
        502: "A hash-sharing source failed (an exchange fetch).",
    }.items()
}

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}


def _error(status: int, code: str, message: str, hint: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "hint": hint}}, status_code=status
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AmparoError)
    async def amparo_error(_request: Request, exc: AmparoError) -> JSONResponse:
        if isinstance(exc, InternalError):
            return _internal_error(exc)
        response = _error(exc.http_status, exc.code, exc.message, exc.hint)
        if isinstance(exc, RateLimitedError):
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        if isinstance(exc, AuthenticationError):
            response.headers["WWW-Authenticate"] = "Bearer"
        if exc.http_status >= 500:
            log.error("%s: %s", exc.code, exc.message)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return _error(
            400,
            "invalid_request",
            "; ".join(problems) or "the request is not valid",
            "see /docs for the parameters this route takes",
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette stops at the first route whose path matches, so its Allow names that
            # route's methods only: name every method of every route for this path.
            allowed = allowed_methods(request.app, request.url.path, headers.get("Allow", ""))
            headers["Allow"] = ", ".join(allowed)
            if request.method == "OPTIONS":
                return Response(status_code=204, headers=headers)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        response = _error(exc.status_code, code, str(exc.detail))
        for name, value in headers.items():
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> JSONResponse:
        return _internal_error(exc)


def _internal_error(exc: Exception) -> JSONResponse:
    """A bug: the details go to the server log, never to the caller."""
    log.exception("unexpected error", exc_info=exc)
    return _error(500, "internal_error", "an unexpected error (a bug): see the server log")


def allowed_methods(app: FastAPI, path: str, also: str = "") -> list[str]:
    """The methods the resource at ``path`` answers: its OpenAPI path's operations (the most
    specific path that matches: ``/v1/webhooks/outbox`` rather than ``/v1/webhooks/{name}``),
    or ``also`` (Starlette's Allow) for the pages outside the document; OPTIONS always."""
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(app.state, "allow_table", None)
    if table is None:
        paths: dict[str, Any] = app.openapi()["paths"]
        table = [
            (compile_path(template)[0], {m.upper() for m in paths[template]})
            for template in sorted(paths, key=lambda p: (p.count("{"), -len(p)))
        ]
        app.state.allow_table = table
    methods = {"OPTIONS"}
    for regex, verbs in table:
        if regex.match(path):
            return sorted(methods | verbs)
    return sorted(methods | {m.strip().upper() for m in also.split(",") if m.strip()})


class AmparoAPI(FastAPI):
    """FastAPI, except that a request for a fast lane (``ServiceMiddleware.fast_lanes``: the
    plain lookups) enters the stack at Amparo's middleware, inside Starlette's error
    middleware: it skips FastAPI's request telemetry and body-limit wrappers, idle here (they
    are kept when an OpenTelemetry provider or ``max_body_size`` is set when the stack is
    built). A request the lane hands back goes on from there as any other (routing,
    validation, error handlers); the lifespan and every other request are FastAPI's."""

    _lane_entry: ASGIApp | None = None
    _lanes: frozenset[tuple[str, str]] = frozenset()

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        node: Any = stack
        while node is not None and not isinstance(node, ServiceMiddleware):
            node = getattr(node, "app", None)
        telemetry = getattr(self, "_native_telemetry", None)
        idle = telemetry is None or not telemetry.enabled()
        if node is not None and idle and getattr(self, "max_body_size", None) is None:
            handler = None
            for key, value in self.exception_handlers.items():
                if key in (500, Exception):
                    handler = value  # as Starlette picks it
            self._lane_entry = ServerErrorMiddleware(node, handler=handler, debug=self.debug)
            self._lanes = frozenset(node.fast_lanes)
        return stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.root_path:
            if self.middleware_stack is None:
                self.middleware_stack = self.build_middleware_stack()
            entry = self._lane_entry
            if entry is not None and (scope.get("method"), scope.get("path")) in self._lanes:
                scope["app"] = self
                await entry(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    amparo: Amparo | None = None,
    server: bool = False,
    clock: Monotonic = monotonic,
) -> FastAPI:
    """Build the API over the installation ``settings`` names (or an open ``amparo``).

    ``server``: this process exists to serve the app (``amparo serve``), so after startup
    everything built so far is frozen out of the garbage collector's full passes.
    ``clock``: what the rate limits and the key cache measure time with.
    """
    settings = settings or (amparo.settings if amparo is not None else load_settings())
    service = Service.build(settings, amparo, clock=clock)
    # Collaborations' figures come from the database at scrape time (see ExchangeCollector).
    exchange_metrics = ExchangeCollector(lambda: service.amparo.exchanges.list())
    service.metrics.add_collector(exchange_metrics)
    service.metrics.add_collector(
        HotlineCollector(lambda: service.amparo.hotline.figures.figures())
    )
    exchange_loop = ExchangeLoop.for_app(service.amparo, settings)
    hotline_loop = ExchangeLoop(
        steps=[("hotline", service.amparo.hotline.runner.run_once)],
        interval=max(0.05, settings.hotline_poll_seconds),
    )
    exchange_loop.on_error = lambda step, _exc: service.metrics.exchange_loop_errors.labels(
        step
    ).inc()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_refresh_quietly, service)
        # Before serving: the first lookups of a cold worker would otherwise be slow, and
        # the first request would build the OpenAPI schema (route templates for metrics).
        await run_in_threadpool(_warm_quietly, service)
        await run_in_threadpool(app.openapi)
        if server:
            # What startup built lives as long as the process: keep it out of the garbage
            # collector's full passes, which otherwise show as latency spikes under load.
            gc.collect()
            gc.freeze()
        task = asyncio.create_task(_keep_index_fresh(service))
        tasks = [task]
        if settings.webhook_deliver_in_serve:
            tasks.append(
                asyncio.create_task(
                    deliver_in_background(service.amparo.actions.outbox, service.settings)
                )
            )
        if settings.exchange_in_serve:
            # Every worker runs it; the fetch lease in the database keeps them apart.
            tasks.append(asyncio.create_task(exchange_loop.run()))
        if settings.hotline_in_serve:
            # Crawls, notices and re-checks; the hotline lease keeps workers apart.
            tasks.append(asyncio.create_task(hotline_loop.run()))
        try:
            yield
        finally:
            for running in tasks:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
            if amparo is None:
                service.close()
            if service.metrics.multiprocess:
                # This worker's gauges leave the figures (its counters stay in the sums).
                mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
            flush_logs()  # the access log's last lines (written a second at a time)

    app = AmparoAPI(
        title="Amparo",
        version=__version__,
        description=(
            "Find known child sexual abuse material by hash matching. Every route but "
            "/healthz needs an API key: `Authorization: Bearer <key>` or `X-API-Key`."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        responses=_ERRORS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.exchange_loop = exchange_loop  # add steps (retro matching) before startup
    app.state.exchange_metrics = exchange_metrics
    app.openapi_url = "/openapi.json"  # what the docs page fetches; served by system.openapi
    _install_error_handlers(app)
    app.add_middleware(
        ServiceMiddleware,
        metrics=service.metrics,
        json_limit=settings.api_max_json_bytes,
        upload_limit=settings.api_max_upload_bytes,
        templates=RouteTemplates(lambda: [*app.openapi()["paths"], "/openapi.json", "/docs"]),
        fast_lanes={
            ("GET", "/m/raw_lookup"): hma.matching.fast_raw_lookup(service),
            ("GET", "/v1/lookup"): fast_lookup(service),
        },
        headers_under={
            "/review": web.SECURITY_HEADERS,
            "/report": web.SECURITY_HEADERS,
            "/console": web.SECURITY_HEADERS,
        },
    )
    app.include_router(system.router)
    app.include_router(v1.router)
    app.include_router(hma.router)
    app.include_router(web.router)
    _share_openapi(app)
    return app


_OPENAPI_SCHEMAS: dict[tuple[str, ...], dict[str, Any]] = {}


def _share_openapi(app: FastAPI) -> None:
    """Build the OpenAPI document once a process: it depends only on the routes (the same
    for every app), and building it takes most of a second (apps are built per test)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            key = tuple(
                f"{getattr(route, 'path', '')} {sorted(getattr(route, 'methods', None) or ())}"
                for route in app.routes
            )
            schema = _OPENAPI_SCHEMAS.get(key)
            if schema is None:
                schema = _OPENAPI_SCHEMAS[key] = build()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _refresh_quietly(service: Service) -> None:
    # Logged by refresh_index; /readyz reports it.
    with contextlib.suppress(Exception):
        service.refresh_index()
        # Every worker keeps its gauges current, not only the one a scrape reaches.
        service.update_index_metrics()
    # The rule cache too: lookups answer on the event loop only while it is fresh, and left
    # to lapse it sent a lookup or more every index_refresh_seconds to the thread pool.
    with contextlib.suppress(Exception):
        service.amparo.checks.recheck_rules()


def _warm_quietly(service: Service) -> None:
    try:
        # The entry table loads in a thread: a million entries take many seconds, and a
        # worker that starts slowly is restarted by uvicorn's health check.
        service.amparo.matcher.warm(entries_in_background=True)
    except Exception:
        # Only speed is at stake; a failing index shows in /readyz through the refresh.
        log.warning("warming the index failed", exc_info=True)


async def _keep_index_fresh(service: Service) -> None:
    """Refresh the index in the background, so lookups rarely wait for catching up.

    A refresh keeps lookups on the event loop for ``index_refresh_seconds`` from its start,
    and while the next one runs: so each starts half an interval after the previous one
    started. (Sleeping a whole interval after each refresh ended left a gap, as long as the
    refresh and more under load, in which every lookup went to the thread pool and the first
    of them refreshed on its own.)"""
    interval = max(0.1, float(service.settings.index_refresh_seconds))
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        await asyncio.sleep(max(0.01, started + interval / 2 - loop.time()))
        started = loop.time()
        await run_in_threadpool(_refresh_quietly, service)


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (several workers): settings from AMPARO_* variables."""
    return create_app(load_settings(), server=True)
