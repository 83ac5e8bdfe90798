"""One pure-ASGI middleware for what every request needs: a request id, a body size limit,
latency metrics by route template and a structured access log line."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amparo.api.logs import request_id_from, request_id_var
from amparo.api.metrics import Metrics
from amparo.errors import PayloadTooLargeError

access_log = logging.getLogger("amparo.access")

# Multipart framing around an upload of the maximum size.
MULTIPART_SLACK = 64 * 1024
_TEMPLATE_CACHE_MAX = 4096

FastLane = Callable[[Scope], Awaitable[bytes | None]]
"""A handler for the hottest routes that skips the framework's routing and validation: it
returns the JSON body of a successful answer, or None to hand the request to the full app
(which then does the same work the usual way, errors included)."""


def body_limit(
    scope: Scope, json_limit: int, upload_limit: int, headers: Mapping[bytes, bytes] | None = None
) -> int:
    """JSON and form bodies get the small limit; uploads and list imports the large one.
    ``headers``: the scope's, as a dict, when the caller has made it already."""
    if headers is None:
        headers = dict(scope.get("headers") or [])
    content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
    path: str = scope.get("path", "")
    if path.endswith("/import") or content_type.startswith("multipart/"):
        return upload_limit + MULTIPART_SLACK
    if content_type.startswith(("application/json", "application/x-www-form-urlencoded")):
        return json_limit
    if not content_type:
        return json_limit
    return upload_limit


def error_body(code: str, message: str, hint: str | None = None) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "hint": hint}}).encode()


class RouteTemplates:
    """Maps a request path to its route template (``/v1/banks/{name}``), so metrics have one
    series per route rather than one per bank or hash. Built from the OpenAPI paths."""

    def __init__(self, paths: Callable[[], list[str]]) -> None:
        self._paths = paths
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None
        self._seen: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        # Most traffic repeats a few paths (/m/raw_lookup): remember them rather than trying
        # every route's pattern on every request.
        template = self._seen.get(path)
        if template is None:
            template = self._find(path)
            if len(self._seen) >= _TEMPLATE_CACHE_MAX:
                self._seen.clear()
            self._seen[path] = template
        return template

    def _find(self, path: str) -> str:
        if self._compiled is None:
            templates = sorted(self._paths(), key=lambda p: (p.count("{"), -len(p)))
            self._compiled = [(compile_path(t)[0], t) for t in templates]
        for regex, template in self._compiled:
            if regex.match(path):
                return template
        return "unmatched"


class ServiceMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        json_limit: int,
        upload_limit: int,
        templates: RouteTemplates,
        fast_lanes: Mapping[tuple[str, str], FastLane] | None = None,
        headers_under: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.app = app
        self.fast_lanes = dict(fast_lanes or {})
        # Path prefix -> headers every response under it carries (errors included) unless the
        # route set the same header itself.
        self.headers_under = [
            (prefix, [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in h.items()])
            for prefix, h in (headers_under or {}).items()
        ]
        self.metrics = metrics
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self.templates = templates
        self._series: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        raw_id = headers.get(b"x-request-id")
        request_id = request_id_from(raw_id.decode("latin-1") if raw_id else None)
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500
        limit = body_limit(scope, self.json_limit, self.upload_limit, headers)

        path = scope.get("path", "")
        extra = [h for prefix, hs in self.headers_under if path.startswith(prefix) for h in hs]

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                present = {bytes(name).lower() for name, _ in message["headers"]}
                message["headers"] = [
                    *message["headers"],
                    *(h for h in extra if h[0] not in present),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLargeError(
                        f"the request body is over the {limit:,}-byte limit",
                        hint="send less per request (the limits are api_max_upload_bytes "
                        "and api_max_json_bytes)",
                    )
            return message

        try:
            declared = headers.get(b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                status = 413
                await _reply(
                    send_with_id,
                    413,
                    error_body(
                        "payload_too_large",
                        f"the request body is over the {limit:,}-byte limit",
                        "send less per request (the limits are api_max_upload_bytes and "
                        "api_max_json_bytes)",
                    ),
                )
            else:
                lane = self.fast_lanes.get((scope.get("method", ""), scope.get("path", "")))
                body = await lane(scope) if lane is not None else None
                if body is not None:
                    status = 200
                    await _reply(send_with_id, 200, body)
                else:
                    await self.app(scope, limited_receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            template = self.templates(scope.get("path", "")) if status != 404 else "unmatched"
            method: str = scope.get("method", "GET")
            self._latency(method, template, status).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                state: Any = scope.get("state") or {}
                fields = {
                    "method": method,
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "key": state.get("key_name") if isinstance(state, dict) else None,
                }
                # access_log.info("request", extra=fields) without looking up the caller's
                # frame (the line does not show it), a measurable share of a fast lookup.
                record = access_log.makeRecord(
                    access_log.name, logging.INFO, __file__, 0, "request", (), None, None, fields
                )
                access_log.handle(record)
            request_id_var.reset(token)

    def _latency(self, method: str, template: str, status: int) -> Any:
        """The latency histogram's series for one route and status (``labels`` on every
        request costs more than the observation)."""
        label = (method, template, status)
        series = self._series.get(label)
        if series is None:
            if len(self._series) >= _TEMPLATE_CACHE_MAX:
                self._series.clear()
            series = self._series[label] = self.metrics.latency.labels(
                method, template, str(status)
            )
        return series


async def _reply(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
