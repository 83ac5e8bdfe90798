"""v1: reports (list, build, read as XML or JSON, submit) and audit-chain verification/export."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response, StreamingResponse

from amparo.api.auth import AUDIT, BUILD_REPORTS, READ_REPORTS, SUBMIT_REPORTS, requires
from amparo.api.service import Service, get_service
from amparo.keys import ApiKey
from amparo.store import audit as chain
from amparo.store.base import audit_key_path
from amparo.store.reports import ReportRecord

router = APIRouter(tags=["v1: reports"])

ReportId = Annotated[int, Path(ge=1, le=2**62)]


def _summary(service: Service, record: ReportRecord) -> dict[str, Any]:
    sub = service.amparo.reports.submission(record.id)
    return {**record.summary(), "submission": sub.to_json() if sub else None}


@router.get("/reports", summary="List reports, newest first")
def list_reports(
    status: Annotated[Literal["queued", "built", "submitted", "retracted"] | None, Query()] = None,
    case_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*READ_REPORTS)),
) -> list[dict[str, Any]]:
    records = service.amparo.reports.list(status=status, case_id=case_id, limit=limit)
    return [_summary(service, r) for r in records]


@router.post("/reports/{report_id}/build", summary="Build a draft from its confirmed case")
def build_report(
    report_id: ReportId,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*BUILD_REPORTS)),
) -> dict[str, Any]:
    record = service.amparo.reports.build(report_id, actor=key.actor)
    return _summary(service, record)


@router.get(
    "/reports/{report_id}",
    summary="Read a report: generic JSON (default) or CyberTipline XML (format=xml)",
    response_model=None,
)
def get_report(
    report_id: ReportId,
    format: Annotated[Literal["json", "xml"], Query()] = "json",
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*READ_REPORTS)),
) -> Response | dict[str, Any]:
    reports = service.amparo.reports
    if format == "xml":
        return Response(reports.xml(report_id), media_type="application/xml")
    record = reports.get(report_id)
    return {**_summary(service, record), "report": record.content}


@router.post(
    "/reports/{report_id}/submit", summary="Submit (or resume submitting) to the CyberTipline"
)
def submit_report(
    report_id: ReportId,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*SUBMIT_REPORTS)),
) -> dict[str, Any]:
    return service.amparo.reports.submit(report_id, actor=key.actor).to_json()


@router.get("/audit/verify", summary="Verify the hash-chained audit log")
def verify_audit(
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*AUDIT)),
) -> dict[str, Any]:
    path = audit_key_path(service.settings)
    key = chain.AuditSigner(path, create=False).public_key if path.exists() else None
    report = chain.verify_store(service.amparo.store.engine, key)
    return {**report.to_json(), "signatures_checked": key is not None}


@router.get(
    "/audit/export",
    summary="Export the audit chain as JSON Lines (verifiable offline)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One JSON object a line: the entries, then the signed checkpoints.",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
def export_audit(
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*AUDIT)),
) -> StreamingResponse:
    signer = chain.AuditSigner(audit_key_path(service.settings))
    lines: Iterator[str] = chain.export_lines(service.amparo.store.engine, signer.public_key)
    return StreamingResponse(
        lines,
        media_type="application/x-ndjson",
        headers={"content-disposition": 'attachment; filename="audit.jsonl"'},
    )
