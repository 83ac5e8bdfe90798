"""HMA ``/h``: hash media from a URL (GET) or an upload (POST)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from amparo.api.auth import HASH, requires
from amparo.api.hma.common import UPLOAD_BODY, hash_form, hash_url
from amparo.api.service import Service, get_service
from amparo.keys import ApiKey

router = APIRouter(prefix="/h", tags=["HMA: hashing"])

TypesParam = Annotated[
    str | None, Query(max_length=200, description="Comma-separated signal types.")
]


@router.get("/hash", response_model=dict[str, str], summary="Hash the media at a URL")
async def hash_get(
    url: Annotated[str, Query(max_length=2048)],
    content_type: Annotated[str | None, Query(max_length=20)] = None,
    types: TypesParam = None,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*HASH)),
) -> dict[str, str]:
    return await hash_url(url, service, key, types=types, content_type=content_type)


@router.post(
    "/hash",
    response_model=dict[str, str],
    summary="Hash an uploaded file (form field 'photo')",
    openapi_extra=UPLOAD_BODY,
)
async def hash_post(
    request: Request,
    types: TypesParam = None,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*HASH)),
) -> dict[str, str]:
    return await hash_form(request, service, types=types)
