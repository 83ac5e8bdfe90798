"""HMA ``/c``: banks and bank content.

HMA banks have a ``matching_enabled_ratio``; Amparo banks are on (1.0) or off (0.0), and a
ratio in between is refused rather than silently rounded. HMA content ids are Amparo entry
ids: content added by upload becomes one entry per signal (PDQ and MD5), and the id reported
is the PDQ entry's when there is one.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from amparo.api.auth import CURATE, READ_BANKS, requires
from amparo.api.hma.common import UPLOAD_BODY, hash_form, hash_url, signal_name
from amparo.api.service import Service, get_service
from amparo.banks.model import BankInfo, EntryRecord
from amparo.errors import BankNotFoundError, InputError, NotFoundError
from amparo.keys import ApiKey
from amparo.signals import normalize_signal

router = APIRouter(prefix="/c", tags=["HMA: curation"])

BankName = Annotated[str, Path(min_length=1, max_length=100)]
FIVE_YEARS = 5 * 365 * 24 * 3600
# Entry ids are 64-bit: anything larger is a 422, not a database overflow.
ContentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Bank content (entry) id.")]


class BankCreate(BaseModel):
    model_config = ConfigDict(strict=True)  # "enabled": 0 is refused, not coerced
    name: str = Field(min_length=1, max_length=100)
    enabled_ratio: float | None = Field(default=None, ge=0.0, le=1.0)
    enabled: bool | None = None


class BankUpdate(BaseModel):
    model_config = ConfigDict(strict=True)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    enabled_ratio: float | None = Field(default=None, ge=0.0, le=1.0)
    enabled: bool | None = None


class BankConfig(BaseModel):
    name: str
    matching_enabled_ratio: float


class ContentMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    content_id: str | None = Field(default=None, max_length=1000)
    content_uri: str | None = Field(default=None, max_length=4000)
    json_data: dict[str, Any] | None = Field(default=None, alias="json")


class ContentAdded(BaseModel):
    id: int
    signals: dict[str, str]


class ContentUpdate(BaseModel):
    disable_until_ts: int | None = None


def _config(bank: BankInfo) -> BankConfig:
    return BankConfig(name=bank.name, matching_enabled_ratio=1.0 if bank.enabled else 0.0)


def _enabled(ratio: float | None, enabled: bool | None) -> bool | None:
    if ratio is not None:
        if ratio not in (0.0, 1.0):
            raise InputError(
                "Amparo banks match fully or not at all: enabled_ratio must be 0 or 1",
                hint="use enabled: true or false",
            )
        return ratio == 1.0
    return enabled


@router.get("/banks", response_model=list[BankConfig], summary="List banks")
def banks_index(
    service: Service = Depends(get_service), _key: ApiKey = Depends(requires(*READ_BANKS))
) -> list[BankConfig]:
    return [_config(b) for b in service.amparo.banks.list(with_counts=False)]


@router.post("/banks", response_model=BankConfig, status_code=201, summary="Create a bank")
def bank_create(
    body: BankCreate,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> BankConfig:
    enabled = _enabled(body.enabled_ratio, body.enabled)
    info = BankInfo(name=body.name, enabled=True if enabled is None else enabled)
    return _config(service.amparo.banks.create(info, actor=key.actor))


@router.get("/bank/{bank_name}", response_model=BankConfig, summary="Show a bank")
def bank_show(
    bank_name: BankName,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*READ_BANKS)),
) -> BankConfig:
    return _config(service.amparo.banks.get(bank_name))


@router.put("/bank/{bank_name}", response_model=BankConfig, summary="Update a bank")
def bank_update(
    bank_name: BankName,
    body: BankUpdate,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> BankConfig:
    bank = service.amparo.banks.get(bank_name)
    if body.name is not None and body.name != bank.name:
        raise InputError(
            "Amparo does not rename banks", hint="create a new bank and import the list into it"
        )
    enabled = _enabled(body.enabled_ratio, body.enabled)
    if enabled is not None and enabled != bank.enabled:
        bank = service.amparo.banks.update(bank_name, actor=key.actor, enabled=enabled)
    return _config(bank)


@router.delete("/bank/{bank_name}", response_model=dict[str, str], summary="Delete a bank")
def bank_delete(
    bank_name: BankName,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> dict[str, str]:
    with contextlib.suppress(BankNotFoundError):  # HMA answers "Done" for a missing bank
        service.amparo.banks.delete(bank_name, actor=key.actor)
    return {"message": "Done"}


def _add_signals(
    service: Service,
    bank_name: str,
    signals: dict[str, str],
    metadata: ContentMetadata | None,
    actor: str,
) -> ContentAdded:
    if not signals:
        raise InputError("No signals given")
    pairs = [normalize_signal(signal_name(t), v) for t, v in signals.items()]
    note = None
    if metadata is not None and (metadata.content_uri or metadata.json_data):
        note = json.dumps(
            {"content_uri": metadata.content_uri, "json": metadata.json_data}, sort_keys=True
        )
    records = [
        EntryRecord(
            t, v, source_id=metadata.content_id if metadata is not None else None, note=note
        )
        for t, v in pairs
    ]
    service.amparo.banks.add_entries(bank_name, records, actor=actor)
    ids = service.amparo.banks.entry_ids(bank_name, pairs)
    content_id = ids.get("pdq") or next(iter(ids.values()), 0)
    return ContentAdded(id=content_id, signals=dict(pairs))


async def _metadata(request: Request) -> ContentMetadata | None:
    if not request.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        data = json.loads(await request.body() or b"null")
    except (ValueError, RecursionError):
        raise InputError("the request body is not valid JSON") from None
    if not isinstance(data, dict) or data.get("metadata") is None:
        return None
    if not isinstance(data["metadata"], dict):
        raise InputError("metadata should be a json object")
    try:
        return ContentMetadata.model_validate(data["metadata"])
    except ValueError as exc:
        raise InputError(f"Invalid metadata: {exc}") from None


@router.post(
    "/bank/{bank_name}/content",
    response_model=ContentAdded,
    summary="Add content by URL (url=) or upload (form field 'photo')",
    openapi_extra={"requestBody": {**UPLOAD_BODY["requestBody"], "required": False}},
)
async def bank_add_content(
    bank_name: BankName,
    request: Request,
    url: Annotated[str | None, Query(max_length=2048)] = None,
    content_type: Annotated[str | None, Query(max_length=20)] = None,
    types: Annotated[str | None, Query(max_length=200)] = None,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> ContentAdded:
    await run_in_threadpool(service.amparo.banks.get, bank_name)
    metadata = await _metadata(request)
    if url:
        hashes = await hash_url(url, service, key, types=types, content_type=content_type)
    elif request.headers.get("content-type", "").startswith("multipart/form-data"):
        hashes = await hash_form(request, service, types=types)
    else:
        raise InputError("Neither `url` nor multipart file upload was received")
    return await run_in_threadpool(_add_signals, service, bank_name, hashes, metadata, key.actor)


@router.post(
    "/bank/{bank_name}/signal",
    response_model=ContentAdded,
    summary='Add content as signals, e.g. {"pdq": "..."}',
)
def bank_add_signals(
    bank_name: BankName,
    body: dict[str, str],
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> ContentAdded:
    service.amparo.banks.get(bank_name)
    return _add_signals(service, bank_name, body, None, key.actor)


def _content(service: Service, bank_name: str, content_id: int) -> dict[str, Any]:
    bank = service.amparo.banks.get(bank_name)
    entry = service.amparo.banks.entry(bank_name, content_id)
    if entry is None:
        raise NotFoundError(f"content '{content_id}' not found")
    until = entry.disabled_until
    disabled = not entry.enabled
    return {
        "id": entry.id,
        "disable_until_ts": -1 if disabled else int(until.timestamp()) if until else 0,
        "original_media_uri": None,
        "bank": _config(bank).model_dump(),
    }


@router.get(
    "/bank/{bank_name}/content/{content_id}",
    response_model=dict[str, Any],
    summary="Show bank content",
)
def bank_get_content(
    bank_name: BankName,
    content_id: ContentId,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*CURATE)),
) -> dict[str, Any]:
    return _content(service, bank_name, content_id)


@router.put(
    "/bank/{bank_name}/content/{content_id}",
    response_model=dict[str, Any],
    summary="Disable content until a Unix time (disable_until_ts)",
)
def bank_update_content(
    bank_name: BankName,
    content_id: ContentId,
    body: ContentUpdate,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> dict[str, Any]:
    _content(service, bank_name, content_id)
    if body.disable_until_ts is not None:
        ts = body.disable_until_ts
        if ts < 0:
            raise InputError("disable_until_ts must be a non-negative integer")
        if ts > time.time() + FIVE_YEARS:
            raise InputError("disable_until_ts must be less than 5 years in the future")
        until = datetime.fromtimestamp(ts, UTC) if ts > time.time() else None
        service.amparo.banks.set_signals_disabled_until(
            bank_name, [], until, actor=key.actor, ids=[content_id]
        )
    return _content(service, bank_name, content_id)


@router.delete(
    "/bank/{bank_name}/content/{content_id}",
    response_model=dict[str, int],
    summary="Remove content from a bank",
)
def bank_delete_content(
    bank_name: BankName,
    content_id: ContentId,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> dict[str, int]:
    service.amparo.banks.get(bank_name)
    deleted = service.amparo.banks.remove_entry_ids(bank_name, [content_id], actor=key.actor)
    return {"deleted": deleted}
