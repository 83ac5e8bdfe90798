"""v1: the evidence store. Metadata for reviewers, auditors and admins; decrypted content for
evidence-reader and admin keys only (a reviewer sees media through /review: blurred, or clear
after a counted reveal), every read audit-logged; preserving, holds and discards for admins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Path, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from amparo.api.auth import ADMIN, EVIDENCE_CONTENT, EVIDENCE_META, requires
from amparo.api.media import read_upload
from amparo.api.schemas import Strict
from amparo.api.service import Service, get_service
from amparo.events import Source
from amparo.evidence.service import EvidenceItem
from amparo.keys import ApiKey

router = APIRouter(prefix="/evidence", tags=["v1: evidence"])

ItemId = Annotated[int, Path(ge=1, le=2**62, description="Evidence item id.")]
Sha256 = Annotated[
    str | None, Query(pattern="^[0-9a-fA-F]{64}$", description="Only items with this SHA-256.")
]
# Past this size the content is streamed (each chunk authenticated before it is sent).
_WHOLE_READ_BYTES = 64 * 1024 * 1024
_NO_STORE = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


class EvidenceOut(BaseModel):
    """An evidence item's metadata: hashes, where it was seen, why and how long it is kept."""

    id: int
    sha256: str
    md5: str
    size: int
    mime: str | None
    media_kind: str | None
    file_name: str | None
    source: dict[str, Any]
    reason: str
    case_id: int | None
    matches: list[dict[str, Any]]
    preserved_at: datetime
    preserved_by: str
    expires_at: datetime | None
    legal_hold: bool
    hold_reason: str | None
    purged_at: datetime | None
    purge_reason: str | None
    sightings: int
    sighting_log: list[dict[str, Any]] | None = Field(
        default=None, description="Every request to preserve it (on GET /v1/evidence/{id})."
    )

    @classmethod
    def of(
        cls, item: EvidenceItem, sighting_log: list[dict[str, Any]] | None = None
    ) -> EvidenceOut:
        return cls(
            id=item.id,
            sha256=item.sha256,
            md5=item.md5,
            size=item.size,
            mime=item.mime,
            media_kind=item.media_kind,
            file_name=item.file_name,
            source=item.source,
            reason=item.reason,
            case_id=item.case_id,
            matches=list(item.matches),
            preserved_at=item.preserved_at,
            preserved_by=item.preserved_by,
            expires_at=item.expires_at,
            legal_hold=item.legal_hold,
            hold_reason=item.hold_reason,
            purged_at=item.purged_at,
            purge_reason=item.purge_reason,
            sightings=item.sightings,
            sighting_log=sighting_log,
        )


class HoldIn(Strict):
    reason: str = Field(min_length=1, max_length=1000, description="Why it must be kept.")


class DiscardIn(Strict):
    reason: str = Field(min_length=1, max_length=1000, description="Why it may be deleted.")


@router.get("", response_model=list[EvidenceOut], summary="List evidence items (metadata)")
def list_evidence(
    sha256: Sha256 = None,
    case_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    include_purged: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Page: ids below this.")
    ] = None,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*EVIDENCE_META)),
) -> list[EvidenceOut]:
    items = service.amparo.evidence.list(
        sha256=sha256,
        case_id=case_id,
        include_purged=include_purged,
        limit=limit,
        before_id=before_id,
    )
    return [EvidenceOut.of(i) for i in items]


@router.get("/{item_id}", response_model=EvidenceOut, summary="Show an evidence item")
def show_evidence(
    item_id: ItemId,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*EVIDENCE_META)),
) -> EvidenceOut:
    evidence = service.amparo.evidence
    return EvidenceOut.of(evidence.get(item_id), evidence.sightings(item_id))


@router.get(
    "/{item_id}/content",
    summary="Read an item's content (evidence-reader and admin keys; logged)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def evidence_content(
    item_id: ItemId,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*EVIDENCE_CONTENT)),
) -> Response:
    evidence = service.amparo.evidence
    item = evidence.get(item_id)
    headers = {
        **_NO_STORE,
        "Content-Disposition": f'attachment; filename="evidence-{item.id}"',
        "X-Amparo-SHA256": item.sha256,
    }
    if item.size <= _WHOLE_READ_BYTES:
        data = evidence.read(item_id, actor=key.actor)
        return Response(data, media_type="application/octet-stream", headers=headers)
    chunks = evidence.iter_content(item_id, actor=key.actor)
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)


@router.post("", response_model=EvidenceOut, status_code=201, summary="Preserve an upload")
async def preserve_evidence(
    file: Annotated[UploadFile, File(description="The content to preserve.")],
    reason: Annotated[str, Query(min_length=1, max_length=1000)] = "manual",
    account_id: Annotated[str | None, Query(max_length=1000)] = None,
    upload_id: Annotated[str | None, Query(max_length=1000)] = None,
    url: Annotated[str | None, Query(max_length=2048)] = None,
    file_name: Annotated[str | None, Query(max_length=1000)] = None,
    case_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    retention_days: Annotated[int | None, Query(ge=0, le=36500)] = None,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*ADMIN)),
) -> EvidenceOut:
    data = await run_in_threadpool(read_upload, file, service)
    source = Source(
        kind="api",
        account_id=account_id,
        upload_id=upload_id,
        url=url,
        file_name=file_name or file.filename or None,
    )
    item = await run_in_threadpool(
        lambda: service.amparo.evidence.preserve(
            data,
            reason=reason,
            case_id=case_id,
            actor=key.actor,
            source=source,
            retention_days=retention_days,
        )
    )
    return EvidenceOut.of(item)


@router.post("/{item_id}/hold", response_model=EvidenceOut, summary="Place a legal hold")
def hold_evidence(
    item_id: ItemId,
    body: HoldIn,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*ADMIN)),
) -> EvidenceOut:
    return EvidenceOut.of(
        service.amparo.evidence.hold(item_id, reason=body.reason, actor=key.actor)
    )


@router.post("/{item_id}/release", response_model=EvidenceOut, summary="Lift a legal hold")
def release_evidence(
    item_id: ItemId,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*ADMIN)),
) -> EvidenceOut:
    return EvidenceOut.of(service.amparo.evidence.release(item_id, actor=key.actor))


@router.post(
    "/{item_id}/discard",
    response_model=EvidenceOut,
    summary="Delete an item's content before its expiry (not while on legal hold)",
)
def discard_evidence(
    item_id: ItemId,
    body: DiscardIn,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*ADMIN)),
) -> EvidenceOut:
    return EvidenceOut.of(
        service.amparo.evidence.discard(item_id, reason=body.reason, actor=key.actor)
    )
