"""Health, readiness, metrics, HMA's /status, and the OpenAPI document and docs page."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from amparo.api.auth import ANY, AUDIT, authenticate, requires
from amparo.api.service import Service, get_service
from amparo.errors import AmparoError, NotFoundError
from amparo.keys import ApiKey

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    index_loaded: bool
    index_current: bool
    index_age_seconds: float | None
    entries_loaded: bool
    """The entry table is in memory (a worker loads it in the background after start-up;
    until then lookups read entries from the database, and the worker is not ready)."""
    error: str | None = None


@router.get("/healthz", response_model=Health, summary="Liveness (no key needed)")
def healthz() -> Health:
    return Health(status="ok")


def readiness(service: Service) -> Readiness:
    matcher = service.amparo.matcher
    age = service.index_age()
    loaded = matcher.checkpoint >= 0 and age is not None
    fresh = age is not None and age <= service.settings.index_max_age_seconds
    try:
        current = (
            loaded and fresh and matcher.checkpoint >= service.amparo.store.changes.current_seq()
        )
        error = service.index.error
    except Exception as exc:  # the database is down: not ready, and say why
        current, error = False, str(exc)
    entries = matcher.entries_loaded
    return Readiness(
        ready=bool(loaded and current and entries and error is None),
        index_loaded=loaded,
        entries_loaded=entries,
        index_current=bool(current),
        index_age_seconds=round(age, 3) if age is not None else None,
        error=error,
    )


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: the index and the entry table are loaded and current",
    responses={503: {"model": Readiness}},
)
def readyz(
    service: Service = Depends(get_service), _key: ApiKey = Depends(requires(*ANY))
) -> Response:
    state = readiness(service)
    return JSONResponse(state.model_dump(), status_code=200 if state.ready else 503)


@router.get(
    "/status",
    summary="HMA liveness: I-AM-ALIVE, or 503 when the index is stale",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, 503: {"content": {"text/plain": {}}}},
)
def status(
    service: Service = Depends(get_service), _key: ApiKey = Depends(requires(*ANY))
) -> PlainTextResponse:
    age = service.index_age()
    if age is None or age > service.settings.index_max_age_seconds:
        return PlainTextResponse("INDEX-STALE", status_code=503)
    return PlainTextResponse("I-AM-ALIVE")


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics(
    service: Service = Depends(get_service), _key: ApiKey = Depends(requires(*AUDIT))
) -> Response:
    service.update_index_metrics()
    return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _docs_key(request: Request, service: Service) -> None:
    if not service.settings.api_public_docs:
        authenticate(request, service, ANY)


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, service: Service = Depends(get_service)) -> JSONResponse:
    _docs_key(request, service)
    schema: dict[str, Any] = request.app.openapi()
    return JSONResponse(schema)


# The docs page loads nothing from elsewhere (air-gapped installations are normal): Swagger
# UI's files come from the swagger-ui-py package, the page's own script from here, and the
# Content-Security-Policy allows only this server.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)
_DOCS_HEADERS = {
    "Content-Security-Policy": DOCS_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
_DOCS_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Amparo API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script></body></html>
"""
_DOCS_INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout", persistAuthorization: false
});
"""


@cache
def swagger_ui_dir() -> Path:
    """Where the installed swagger-ui-py package keeps Swagger UI's files (not imported: only
    its files are used)."""
    spec = importlib.util.find_spec("swagger_ui")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise AmparoError(
            "Swagger UI's files are not installed",
            hint="install the swagger-ui-py package (a dependency of amparo)",
        )
    return Path(locations[0]) / "static"


@router.get("/docs", include_in_schema=False)
def docs(request: Request, service: Service = Depends(get_service)) -> HTMLResponse:
    _docs_key(request, service)
    return HTMLResponse(_DOCS_PAGE, headers=_DOCS_HEADERS)


@router.get("/docs/assets/{name}", include_in_schema=False)
def docs_asset(name: str) -> Response:
    # Public like any static file: Swagger UI itself, nothing of this installation's.
    if name == "init.js":
        body = _DOCS_INIT.encode()
        media_type = "text/javascript; charset=utf-8"
    elif name in _DOCS_ASSETS:
        body = (swagger_ui_dir() / name).read_bytes()
        media_type = _DOCS_ASSETS[name]
    else:
        raise NotFoundError(f"no docs asset {name!r}", hint="the docs page is at /docs")
    return Response(
        body,
        media_type=media_type,
        headers={**_DOCS_HEADERS, "Cache-Control": "public, max-age=86400"},
    )
