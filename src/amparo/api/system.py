"""Health, readiness, metrics, HMA's /status, and the OpenAPI document and docs page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from amparo.api.auth import ANY, authenticate, requires
from amparo.api.service import Service, get_service
from amparo.keys import ApiKey

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    index_loaded: bool
    index_current: bool
    index_age_seconds: float | None
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
        current = loaded and fresh and matcher.checkpoint >= service.amparo.store.current_seq()
        error = service.index.error
    except Exception as exc:  # the database is down: not ready, and say why
        current, error = False, str(exc)
    return Readiness(
        ready=bool(loaded and current and error is None),
        index_loaded=loaded,
        index_current=bool(current),
        index_age_seconds=round(age, 3) if age is not None else None,
        error=error,
    )


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: the index is loaded and current",
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
    service: Service = Depends(get_service), _key: ApiKey = Depends(requires(*ANY))
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


@router.get("/docs", include_in_schema=False)
def docs(request: Request, service: Service = Depends(get_service)) -> HTMLResponse:
    _docs_key(request, service)
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Amparo API")
