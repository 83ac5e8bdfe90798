"""v1: review cases and decisions (reviewers), and entries disabled after false positives
(curators). Media is not served here: the reviewer web UI at /review shows it, shielded."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from amparo.api.auth import CURATE, requires
from amparo.api.service import Service, get_service
from amparo.keys import ApiKey
from amparo.review.model import CaseItem, CaseView, Decision, DisabledEntry, Exposure

router = APIRouter(tags=["v1: review"])

REVIEW = ("reviewer",)
Status = Literal["waiting", "open", "escalated", "decided", "all"]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["confirm", "false_positive", "escalate"]
    classification: Literal["A1", "A2", "B1", "B2"] | None = Field(
        default=None, description="Tech Coalition classification; required for confirm."
    )
    annotations: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, max_length=20
    )
    note: str | None = Field(default=None, max_length=4000)


class DecisionOut(BaseModel):
    kind: str
    reviewer: str
    at: datetime
    classification: str | None
    annotations: list[str]
    note: str | None

    @classmethod
    def of(cls, d: Decision) -> DecisionOut:
        return cls(
            kind=d.kind,
            reviewer=d.reviewer,
            at=d.at,
            classification=d.classification,
            annotations=list(d.annotations),
            note=d.note,
        )


class CaseItemOut(BaseModel):
    id: int
    sha256: str
    md5: str | None
    size: int | None
    media_kind: str | None
    file_name: str | None
    source: dict[str, Any]
    matches: list[dict[str, Any]]
    evidence_id: int | None
    status: str
    priority: int
    first_seen: datetime
    last_seen: datetime
    sightings: int
    viewed: bool
    decision: DecisionOut | None

    @classmethod
    def of(cls, i: CaseItem) -> CaseItemOut:
        return cls(
            id=i.id,
            sha256=i.sha256,
            md5=i.md5,
            size=i.size,
            media_kind=i.media_kind,
            file_name=i.file_name,
            source=i.source,
            matches=[m.to_json() for m in i.matches],
            evidence_id=i.evidence_id,
            status=i.status,
            priority=i.priority,
            first_seen=i.first_seen,
            last_seen=i.last_seen,
            sightings=i.sightings,
            viewed=i.viewed,
            decision=DecisionOut.of(i.decision) if i.decision else None,
        )


class CaseOut(BaseModel):
    id: int
    group: str
    status: str
    priority: int
    rule: str | None
    opened_at: datetime
    updated_at: datetime
    items: list[CaseItemOut]

    @classmethod
    def of(cls, c: CaseView) -> CaseOut:
        return cls(
            id=c.id,
            group=c.group,
            status=c.status,
            priority=c.priority,
            rule=c.rule,
            opened_at=c.opened_at,
            updated_at=c.updated_at,
            items=[CaseItemOut.of(i) for i in c.items],
        )


class ExposureOut(BaseModel):
    reviewer: str
    revealed_today: int
    daily_limit: int
    remaining: int

    @classmethod
    def of(cls, e: Exposure) -> ExposureOut:
        return cls(
            reviewer=e.reviewer,
            revealed_today=e.revealed_today,
            daily_limit=e.daily_limit,
            remaining=e.remaining,
        )


class DisabledEntryOut(BaseModel):
    entry_id: int
    bank: str
    signal_type: str
    category: str | None
    source_id: str | None
    false_positives: int
    disabled_at: datetime

    @classmethod
    def of(cls, e: DisabledEntry) -> DisabledEntryOut:
        return cls(**e.__dict__)


class ReenabledOut(BaseModel):
    reenabled: int


@router.get("/cases", response_model=list[CaseOut], summary="The review queue")
def list_cases(
    status: Status = "waiting",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*REVIEW)),
) -> list[CaseOut]:
    """Cases in priority order: most severe category first, then closest match, then longest
    waiting. ``waiting`` (the default) is open and escalated cases."""
    cases = service.amparo.cases.queue(status, limit=limit, offset=offset)
    return [CaseOut.of(c) for c in cases]


@router.get("/cases/{case_id}", response_model=CaseOut, summary="Show a case")
def show_case(
    case_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*REVIEW)),
) -> CaseOut:
    return CaseOut.of(service.amparo.cases.get(case_id))


@router.post(
    "/cases/items/{item_id}/decision",
    response_model=DecisionOut,
    summary="Decide about one item of a case",
)
def decide(
    item_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: DecisionIn,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*REVIEW)),
) -> DecisionOut:
    """``confirm`` (with a classification), ``false_positive`` (counts against the matched
    bank entries; the preserved copy is discarded once ``review_undo_seconds`` have passed,
    by ``evidence purge``) or ``escalate``; the latest decision counts, all are audit-logged,
    and the reviewer may undo it within ``review_undo_seconds``."""
    decision = service.amparo.cases.decide(
        item_id,
        body.kind,
        classification=body.classification,
        annotations=body.annotations,
        note=body.note,
        reviewer=key.name,
        actor=key.actor,
    )
    return DecisionOut.of(decision)


class UndoneOut(BaseModel):
    item: int
    decision: DecisionOut | None = Field(
        description="The item's decision now (null: it waits for review again)."
    )


@router.post(
    "/cases/items/{item_id}/decision/undo",
    response_model=UndoneOut,
    summary="Undo your latest decision on an item (within review_undo_seconds)",
)
def undo_decision(
    item_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*REVIEW)),
) -> UndoneOut:
    """Take back the caller's own latest decision on an item within ``review_undo_seconds``
    of it (409 after that, or when another reviewer decided since); audit-logged. A false
    positive's preserved copy is discarded only after that grace, by ``evidence purge``."""
    now = service.amparo.cases.undo(item_id, reviewer=key.name, actor=key.actor)
    return UndoneOut(item=item_id, decision=DecisionOut.of(now) if now else None)


@router.get("/review/exposure", response_model=ExposureOut, summary="Your exposure today")
def exposure(
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*REVIEW)),
) -> ExposureOut:
    return ExposureOut.of(service.amparo.cases.exposure(key.name))


@router.get(
    "/review/disabled-entries",
    response_model=list[DisabledEntryOut],
    summary="Entries disabled after false positives",
)
def disabled_entries(
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*CURATE)),
) -> list[DisabledEntryOut]:
    """Bank entries that reached ``review_fp_disable_after`` false positives and wait for a
    curator: re-enable the right ones, remove or correct the wrong ones."""
    return [DisabledEntryOut.of(e) for e in service.amparo.cases.disabled_entries()]


@router.post(
    "/review/disabled-entries/{entry_id}/enable",
    response_model=ReenabledOut,
    summary="Re-enable an entry disabled after false positives",
)
def reenable_entry(
    entry_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> ReenabledOut:
    service.amparo.cases.reenable_entry(entry_id, actor=key.actor)
    return ReenabledOut(reenabled=entry_id)
