"""v1: the hotline's staff routes: URL reports (list, detail with items and notices), a crawl,
re-check or notice now, and the published figures (JSON or CSV).

Reviewers and curators read (admin always passes); only curators act. Every route calls
``amparo.hotline`` only. What is returned names URLs, hashes and match results, never media;
a reporter's contact details are not returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from amparo.api.auth import CURATE, requires
from amparo.api.service import Service, get_service
from amparo.api.v1.proposals import ProposalOut
from amparo.hotline.model import (
    REPORT_STATUSES,
    STATUS_HINT,
    UrlReport,
    statuses_named,
)
from amparo.keys import ApiKey

router = APIRouter(prefix="/hotline", tags=["v1: hotline"])

READ = ("reviewer", "curator")
ReportId = Annotated[int, Path(ge=1, le=2**63 - 1, description="URL report id.")]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class AttributionOut(_Out):
    """Where the host's content lives (the operator's .mmdb databases, RDAP or overrides)."""

    host: str
    addresses: list[str]
    asn: int | None
    provider: str | None
    country: str | None
    abuse_email: str | None
    abuse_source: str | None
    cdn: bool
    databases: list[dict[str, Any]]
    resolved_at: datetime | None
    error: str | None


class ReportOut(_Out):
    """One reported URL and where its handling stands (docs/hotline.md)."""

    id: int
    url: str
    host: str
    status: str = Field(description="One of: " + ", ".join(REPORT_STATUSES))
    created_at: datetime
    updated_at: datetime
    submissions: int
    language: str
    crawled_at: datetime | None
    crawl_error: str | None
    crawl_attempts: int
    next_crawl_at: datetime | None
    attribution: AttributionOut | None
    first_notice_at: datetime | None
    last_notice_at: datetime | None
    notices_sent: int
    next_notice_at: datetime | None
    escalated: bool
    next_recheck_at: datetime | None
    recheck_attempts: int
    removed_at: datetime | None
    reappearances: int
    media_urls: list[str]


class ItemOut(_Out):
    """One medium found behind the URL: its hashes, match and assessment (never the media)."""

    id: int
    media_url: str
    sha256: str
    md5: str | None
    pdq: str | None
    size: int | None
    mime: str | None
    media_kind: str | None
    status: str
    matches: list[dict[str, Any]]
    evidence_id: int | None
    assessment: str | None
    jurisdiction: str | None
    assessed_by: str | None
    assessed_at: datetime | None
    note: str | None
    online: bool
    first_seen: datetime
    last_seen: datetime
    removed_at: datetime | None
    reappearances: int


class NoticeOut(_Out):
    """A notice, repeat, escalation or forward sent (``ok``) or tried."""

    id: int
    kind: str
    channel: str
    recipient: str
    at: datetime
    language: str
    ok: bool
    error: str | None
    detail: dict[str, Any]


class SubmissionOut(_Out):
    """One report of the URL (its contact details are not returned)."""

    id: int
    at: datetime
    channel: str
    reporter: str | None
    language: str
    comment: str | None


class ReportDetailOut(ReportOut):
    """A URL report with each submission of it, the items found and the notices sent."""

    submitted: list[SubmissionOut]
    items: list[ItemOut]
    notices: list[NoticeOut]


class GroupOut(BaseModel):
    """The figures of a group of reports: all, one provider's or one country's."""

    name: str
    reports: int
    open_urls: int
    notices_sent: int
    noticed: int
    removed: int
    removal_hours: dict[str, float | None] = Field(
        description="p50, p90, p99 of hours from the first notice to removal."
    )
    removed_within: dict[str, float | None] = Field(
        description="1d, 3d, 7d: share (0-1) of noticed reports removed within that time."
    )
    reappearances: int


class BucketOut(BaseModel):
    key: str
    label: str
    reports: int


class FiguresOut(BaseModel):
    """What a hotline publishes (docs/hotline.md, "Figures")."""

    generated_at: datetime
    overall: GroupOut
    by_status: dict[str, int]
    by_provider: list[GroupOut]
    by_country: list[GroupOut]
    removal_buckets: list[BucketOut]


def _report(report: UrlReport) -> ReportOut:
    return ReportOut.model_validate(report)


@router.get("/reports", response_model=list[ReportOut], summary="List URL reports")
def list_reports(
    status: Annotated[
        str | None, Query(max_length=20, description="A status, or open: " + STATUS_HINT)
    ] = None,
    country: Annotated[
        str | None,
        Query(pattern="^[A-Za-z]{2}$", description="Hosting country, ISO 3166-1 alpha-2."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*READ)),
) -> list[ReportOut]:
    """Newest first."""
    reports = service.amparo.hotline.records.list(
        statuses=statuses_named(status), country=country, limit=limit, offset=offset
    )
    return [_report(r) for r in reports]


@router.get(
    "/reports/{report_id}",
    response_model=ReportDetailOut,
    summary="Show a URL report with its items and notices",
)
def show_report(
    report_id: ReportId,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*READ)),
) -> ReportDetailOut:
    records = service.amparo.hotline.records
    report = records.get(report_id)
    return ReportDetailOut(
        **ReportOut.model_validate(report).model_dump(),
        submitted=[SubmissionOut.model_validate(s) for s in records.submissions(report_id)],
        items=[ItemOut.model_validate(i) for i in records.items(report_id)],
        notices=[NoticeOut.model_validate(n) for n in records.notices(report_id)],
    )


@router.post("/reports/{report_id}/crawl", response_model=ReportOut, summary="Crawl now")
def crawl_report(
    report_id: ReportId,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> ReportOut:
    """Fetch the page, hash and match what it shows, attribute the host (may take a while)."""
    hotline = service.amparo.hotline
    hotline.records.get(report_id)  # 404 before anything is fetched
    return _report(hotline.verifier.crawl(report_id, actor=key.actor))


@router.post("/reports/{report_id}/recheck", response_model=ReportOut, summary="Re-check now")
def recheck_report(
    report_id: ReportId,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> ReportOut:
    """Whether the content is still online: removal confirmed, or a reappearance noticed."""
    hotline = service.amparo.hotline
    hotline.records.get(report_id)
    return _report(hotline.rechecker.recheck(report_id, actor=key.actor))


@router.post(
    "/reports/{report_id}/notify", response_model=list[NoticeOut], summary="Send the notice now"
)
def notify_report(
    report_id: ReportId,
    force: Annotated[bool, Query(description="Send one now even if none is due yet.")] = False,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> list[NoticeOut]:
    """The report's due notice, repeat, escalation or forward (none when nothing is due)."""
    hotline = service.amparo.hotline
    hotline.records.get(report_id)
    notices = hotline.notifier.notify(report_id, actor=key.actor, force=force)
    return [NoticeOut.model_validate(n) for n in notices]


class AssessmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assessment: Literal["baseline", "national", "not_illegal"] = Field(
        description="ICCAM: baseline (illegal internationally), national (under the "
        "jurisdiction's law), not_illegal."
    )
    jurisdiction: str | None = Field(
        default=None, max_length=8, description="ISO 3166 code, for a national assessment."
    )
    note: str | None = Field(default=None, max_length=4000)


class ItemProposalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bank: str = Field(min_length=1, max_length=200, description="The outgoing bank.")
    classification: Literal["A1", "A2", "B1", "B2"] = Field(
        description="The industry classification the published entries carry."
    )
    note: str | None = Field(default=None, max_length=4000, description="For the curator.")


ItemId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Hotline item id.")]


@router.get("/items", response_model=list[ItemOut], summary="Unknown items waiting for an analyst")
def waiting_items(
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires("reviewer")),
) -> list[ItemOut]:
    """Oldest first: the analysts' queue (hashes and URLs; the media is seen shielded on
    /review/hotline)."""
    found = service.amparo.hotline.assessments.waiting(limit=limit, offset=offset)
    return [ItemOut.model_validate(i) for i in found]


@router.post(
    "/items/{item_id}/assessment", response_model=ItemOut, summary="Assess an unknown item"
)
def assess_item(
    item_id: ItemId,
    body: AssessmentIn,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires("reviewer")),
) -> ItemOut:
    """An analyst's classification; moves the report on (confirmed -> noticed; all not
    illegal -> closed). Audit-logged as ``hotline.assess``."""
    item = service.amparo.hotline.assessments.assess(
        item_id,
        body.assessment,
        actor=key.actor,
        jurisdiction=body.jurisdiction,
        note=body.note,
    )
    return ItemOut.model_validate(item)


@router.post(
    "/items/{item_id}/proposals",
    response_model=ProposalOut,
    status_code=201,
    summary="Propose an item assessed illegal to an outgoing bank",
)
def propose_item(
    item_id: ItemId,
    body: ItemProposalIn,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires("reviewer", "curator")),
) -> ProposalOut:
    """The share-back path: hashes recomputed from the preserved copy, published only once a
    curator approves (``/v1/proposals``)."""
    proposal = service.amparo.hotline.assessments.propose(
        item_id,
        body.bank,
        actor=key.actor,
        note=body.note,
        classification=body.classification,
    )
    return ProposalOut.of(proposal)


@router.get(
    "/stats",
    response_model=FiguresOut,
    summary="The figures the hotline publishes",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def stats(
    format: Annotated[
        Literal["json", "csv"], Query(description="json (default) or csv: one row per group.")
    ] = "json",
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*READ)),
) -> FiguresOut | Response:
    """Reports, open URLs, notices sent, removals, removal hours (p50/p90/p99) and the share
    removed within 1, 3 and 7 days of the first notice: overall, per provider, per country."""
    figures = service.amparo.hotline.figures.figures()
    if format == "csv":
        return Response(
            figures.to_csv(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="hotline-figures.csv"'},
        )
    return FiguresOut.model_validate(figures.to_json())
