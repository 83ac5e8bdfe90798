"""v1: URL reports from partner hotlines and platforms (``reporter`` keys, and admin).

``POST /v1/url-reports`` records a report of a URL (normalised; a second report of a URL
whose report is open joins it); ``GET /v1/url-reports/{id}`` reads back where a report stands,
to a key that filed it (admin: any), and nothing else about it. Bad input is a 400 JSON error
with a hint (``url_refused`` for a URL that cannot be reported)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from amparo.api.auth import requires
from amparo.api.service import Service, get_service
from amparo.errors import NotFoundError
from amparo.hotline.intake import MAX_COMMENT, MAX_CONTACT
from amparo.hotline.model import UrlReport
from amparo.keys import ApiKey

router = APIRouter(tags=["v1: url reports"])

REPORT = ("reporter",)
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]


class UrlReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1, max_length=4096, description="The page's address (http or https)."
    )
    language: str | None = Field(
        default=None, max_length=35, description="es, pt_BR or en (others: en)."
    )
    contact: str | None = Field(
        default=None,
        max_length=MAX_CONTACT,
        description="Email address or phone number of whom the hotline may contact.",
    )
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)


class UrlReportCreated(BaseModel):
    id: int
    url: str = Field(description="The URL as normalised.")
    status: str
    joined: bool = Field(description="Whether it joined an open report of the same URL.")


class UrlReportStatus(BaseModel):
    id: int
    url: str
    status: str
    created_at: datetime
    submissions: int

    @classmethod
    def of(cls, report: UrlReport) -> UrlReportStatus:
        return cls(
            id=report.id,
            url=report.url,
            status=report.status,
            created_at=report.created_at,
            submissions=report.submissions,
        )


@router.post(
    "/url-reports",
    response_model=UrlReportCreated,
    status_code=201,
    summary="Report a URL to the hotline",
)
def create_url_report(
    body: UrlReportIn,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*REPORT)),
) -> UrlReportCreated:
    """The URL is normalised and checked (http(s), no credentials, no private address written
    as an IP); the report is crawled and matched later. Audit-logged as ``hotline.report``."""
    report, joined = service.amparo.hotline.intake.report(
        body.url,
        channel="api",
        actor=key.actor,
        reporter=key.name,
        language=body.language or "en",
        contact=body.contact,
        comment=body.comment,
    )
    return UrlReportCreated(id=report.id, url=report.url, status=report.status, joined=joined)


class SignedForwardIn(BaseModel):
    """A report forwarded by a partner hotline, as its Amparo signed it."""

    model_config = ConfigDict(extra="forbid")

    export: dict[str, Any] = Field(description="The forwarded report (format amparo.forward).")
    key_id: str = Field(max_length=64, description="The signing key's id.")
    signature: str = Field(max_length=200, description="Ed25519 signature over the export.")


@router.post(
    "/forwards",
    response_model=UrlReportCreated,
    status_code=201,
    summary="Receive a report forwarded by a partner hotline",
)
def receive_forwarded_report(
    body: SignedForwardIn,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*REPORT)),
) -> UrlReportCreated:
    """Accepted only when signed by the public key of a partner in ``hotline_partners_file``
    (403 otherwise); the URL is then reported here and
    crawled and verified by this hotline. Audit-logged as ``hotline.forward.receive``."""
    report, joined = service.amparo.hotline.intake.receive_forward(
        body.model_dump(), actor=key.actor, reporter=key.name
    )
    return UrlReportCreated(id=report.id, url=report.url, status=report.status, joined=joined)


@router.get(
    "/url-reports/{report_id}",
    response_model=UrlReportStatus,
    summary="Where a URL report you filed stands",
)
def show_url_report(
    report_id: Id,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*REPORT)),
) -> UrlReportStatus:
    """404 for a report this key did not file (as for one that does not exist)."""
    records = service.amparo.hotline.records
    if "admin" not in key.scopes and not any(
        s.reporter == key.name for s in records.submissions(report_id)
    ):
        raise NotFoundError(
            "no such URL report filed by this key",
            hint="a reporter key reads back only the reports it filed",
        )
    return UrlReportStatus.of(records.get(report_id))
