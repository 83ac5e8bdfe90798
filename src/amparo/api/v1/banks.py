"""v1: banks and their entries (curators), import and export of hash lists."""

from __future__ import annotations

import io
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from amparo.api.auth import CURATE, READ_BANKS, requires
from amparo.api.media import hash_media_bytes, hashable_media_type
from amparo.api.schemas import (
    BankIn,
    BankOut,
    BankPatch,
    ChangedOut,
    DeletedOut,
    DisableIn,
    EntriesIn,
    EntrySelection,
    HashesOut,
    ImportOut,
    MediaAddOut,
)
from amparo.api.service import Service, get_service
from amparo.api.v1.matching import FileParam, UrlParam, media_bytes
from amparo.banks.model import BankInfo, EntryRecord
from amparo.banks.service import ImportReport
from amparo.errors import InputError
from amparo.keys import ApiKey
from amparo.signals import normalize_signal

router = APIRouter(prefix="/banks", tags=["v1: banks"])

BankName = Annotated[str, Path(min_length=1, max_length=100)]
Format = Literal["text", "csv", "te", "vics"]
_EXPORT_TYPES = {
    "text": "text/plain",
    "csv": "text/csv",
    "te": "text/plain",
    "vics": "application/json",
}


def import_out(report: ImportReport) -> ImportOut:
    return ImportOut(
        bank=report.bank,
        added=report.added,
        updated=report.updated,
        removed=report.removed,
        read=report.read,
        problems=report.problems,
        problem_count=report.problem_count,
        warnings=report.warnings,
    )


@router.get("", response_model=list[BankOut], summary="List banks")
def list_banks(
    service: Service = Depends(get_service), _key: ApiKey = Depends(requires(*READ_BANKS))
) -> list[BankOut]:
    return [BankOut.of(b) for b in service.amparo.banks.list()]


@router.post("", response_model=BankOut, status_code=201, summary="Create a bank")
def create_bank(
    body: BankIn, service: Service = Depends(get_service), key: ApiKey = Depends(requires(*CURATE))
) -> BankOut:
    info = BankInfo(**body.model_dump())
    return BankOut.of(service.amparo.banks.create(info, actor=key.actor))


@router.get("/{name}", response_model=BankOut, summary="Show a bank")
def show_bank(
    name: BankName,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*READ_BANKS)),
) -> BankOut:
    return BankOut.of(service.amparo.banks.get(name))


@router.patch("/{name}", response_model=BankOut, summary="Change a bank's settings")
def update_bank(
    name: BankName,
    body: BankPatch,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> BankOut:
    # null means "no change", except for pdq_threshold where it means "the default".
    changes = {
        k: v
        for k, v in body.model_dump(exclude_unset=True).items()
        if v is not None or k == "pdq_threshold"
    }
    if not changes:
        return BankOut.of(service.amparo.banks.get(name))
    return BankOut.of(service.amparo.banks.update(name, actor=key.actor, **changes))


@router.post("/{name}/enable", response_model=BankOut, summary="Enable matching in a bank")
def enable_bank(
    name: BankName,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> BankOut:
    return BankOut.of(service.amparo.banks.update(name, actor=key.actor, enabled=True))


@router.post("/{name}/disable", response_model=BankOut, summary="Disable matching in a bank")
def disable_bank(
    name: BankName,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> BankOut:
    return BankOut.of(service.amparo.banks.update(name, actor=key.actor, enabled=False))


@router.delete("/{name}", response_model=DeletedOut, summary="Delete a bank and its entries")
def delete_bank(
    name: BankName,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> DeletedOut:
    service.amparo.banks.delete(name, actor=key.actor)
    return DeletedOut(deleted=name)


@router.post("/{name}/entries", response_model=ImportOut, summary="Add entries with metadata")
def add_entries(
    name: BankName,
    body: EntriesIn,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> ImportOut:
    records = [EntryRecord(**e.model_dump()) for e in body.entries]
    return import_out(service.amparo.banks.add_entries(name, records, actor=key.actor))


def _selection(body: EntrySelection) -> tuple[list[tuple[str, str]], list[int]]:
    if not body.ids and not body.signals:
        raise InputError("name the entries: give 'ids', 'signals' or both")
    return [normalize_signal(s.signal_type, s.signal) for s in body.signals], list(body.ids)


@router.post("/{name}/entries/remove", response_model=ChangedOut, summary="Remove entries")
def remove_entries(
    name: BankName,
    body: EntrySelection,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> ChangedOut:
    signals, ids = _selection(body)
    banks = service.amparo.banks
    changed = banks.remove_entry_ids(name, ids, actor=key.actor) if ids else 0
    if signals:
        changed += banks.remove_signals(name, signals, actor=key.actor)
    return ChangedOut(changed=changed)


@router.post(
    "/{name}/entries/disable",
    response_model=ChangedOut,
    summary="Disable entries, until re-enabled or until a date",
)
def disable_entries(
    name: BankName,
    body: DisableIn,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> ChangedOut:
    signals, ids = _selection(body)
    banks = service.amparo.banks
    if body.until is not None:
        if body.until.tzinfo is None:
            raise InputError("'until' needs a time zone", hint="e.g. 2030-01-01T00:00:00Z")
        changed = banks.set_signals_disabled_until(
            name, signals, body.until, actor=key.actor, ids=ids
        )
    else:
        changed = banks.set_signals_enabled(name, signals, False, actor=key.actor, ids=ids)
    return ChangedOut(changed=changed)


@router.post(
    "/{name}/entries/enable", response_model=ChangedOut, summary="Enable entries (ends a pause)"
)
def enable_entries(
    name: BankName,
    body: EntrySelection,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> ChangedOut:
    signals, ids = _selection(body)
    banks = service.amparo.banks
    banks.set_signals_disabled_until(name, signals, None, actor=key.actor, ids=ids)
    changed = banks.set_signals_enabled(name, signals, True, actor=key.actor, ids=ids)
    return ChangedOut(changed=changed)


def add_media_to_bank(
    service: Service,
    name: str,
    data: bytes,
    *,
    category: str | None,
    tags: list[str],
    source_id: str | None,
    note: str | None,
    actor: str,
) -> MediaAddOut:
    """Hash media and add its PDQ (when usable) and MD5, or a video's vPDQ, MD5 and SHA-256;
    report the entry ids of what was written, and why a perceptual hash was not."""
    amparo = service.amparo
    amparo.banks.get(name)
    checked = None
    if hashable_media_type(data) != "video":  # a video is hashed once, at the bank sampling rate
        # Refuses what is not media before anything is written; the hashes are then reused.
        checked = hash_media_bytes(data, service)
    hashes, report = amparo.banks.add_media(
        name,
        data,
        category=category,
        tags=tags,
        source_id=source_id,
        note=note,
        actor=actor,
        hashes=checked,
    )
    ids = amparo.banks.entry_ids(name, report.signals.items())  # only what was written
    return MediaAddOut(
        bank=name,
        hashes=HashesOut.of(hashes),
        entry_ids=ids,
        added=report.added,
        updated=report.updated,
        signals=list(report.signals),
        not_added=report.not_added,
        variants=report.variants,
    )


@router.post("/{name}/media", response_model=MediaAddOut, summary="Add media (hashed) to a bank")
async def add_media(
    name: BankName,
    file: FileParam = None,
    url: UrlParam = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    tags: Annotated[list[str] | None, Query(alias="tag", max_length=50)] = None,
    source_id: Annotated[str | None, Query(max_length=1000)] = None,
    note: Annotated[str | None, Query(max_length=10_000)] = None,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> MediaAddOut:
    data = await media_bytes(file, url, service, key)
    return await run_in_threadpool(
        add_media_to_bank,
        service,
        name,
        data,
        category=category,
        tags=tags or [],
        source_id=source_id,
        note=note,
        actor=key.actor,
    )


@router.post(
    "/{name}/import",
    response_model=ImportOut,
    summary="Import a hash list (text, csv, te or vics)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def import_list(
    name: BankName,
    request: Request,
    format: Annotated[Format, Query(description="List format.")],
    signal_type: Annotated[
        Literal["pdq", "md5", "sha1", "sha256"] | None,
        Query(description="Signal type of a text list."),
    ] = None,
    replace: Annotated[bool, Query(description="Remove entries not in the list.")] = False,
    source: Annotated[str | None, Query(max_length=1000)] = None,
    strict: bool = False,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> ImportOut:
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("the list is not UTF-8 text", hint="convert it to UTF-8") from None
    report = await run_in_threadpool(
        service.amparo.banks.import_entries,
        name,
        io.StringIO(text),
        format,
        signal_type=signal_type,
        strict=strict,
        replace=replace,
        source_name=source,
        actor=key.actor,
    )
    return import_out(report)


@router.get(
    "/{name}/export",
    summary="Export a hash list (curators only)",
    response_class=Response,
    responses={200: {"content": {t: {} for t in sorted(set(_EXPORT_TYPES.values()))}}},
)
def export_list(
    name: BankName,
    format: Annotated[Format, Query(description="List format.")] = "csv",
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*CURATE)),
) -> Response:
    out = io.StringIO()
    service.amparo.banks.export_entries(name, out, format)
    return Response(out.getvalue(), media_type=_EXPORT_TYPES[format])
