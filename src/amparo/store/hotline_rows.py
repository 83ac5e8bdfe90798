"""The hotline tables as the repositories read them, and the one mapping of each row to its
record (:mod:`amparo.hotline.model`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table

from amparo.clock import as_utc
from amparo.hotline.model import (
    Attribution,
    HotlineItem,
    Notice,
    Submission,
    UrlReport,
)
from amparo.store.models_hotline import (
    HotlineItemRow,
    HotlineNoticeRow,
    HotlineReportRow,
    HotlineSubmissionRow,
    RdapCacheRow,
)

report_t = cast(Table, HotlineReportRow.__table__)
submission_t = cast(Table, HotlineSubmissionRow.__table__)
item_t = cast(Table, HotlineItemRow.__table__)
notice_t = cast(Table, HotlineNoticeRow.__table__)
rdap_t = cast(Table, RdapCacheRow.__table__)

REPORT_FIELDS = frozenset(
    {
        "status",
        "language",
        "crawled_at",
        "crawl_error",
        "crawl_attempts",
        "next_crawl_at",
        "attribution",
        "first_notice_at",
        "last_notice_at",
        "notices_sent",
        "next_notice_at",
        "escalated",
        "next_recheck_at",
        "recheck_attempts",
        "removed_at",
        "reappearances",
        "media_urls",
    }
)
ITEM_FIELDS = frozenset(
    {
        "media_url",
        "md5",
        "pdq",
        "size",
        "mime",
        "media_kind",
        "status",
        "matches",
        "evidence_id",
        "assessment",
        "jurisdiction",
        "assessed_by",
        "assessed_at",
        "note",
        "online",
        "removed_at",
        "reappearances",
        "last_seen",
    }
)


def dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def when(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def report_of(row: Row[Any]) -> UrlReport:
    attribution = json.loads(row.attribution) if row.attribution else None
    return UrlReport(
        id=row.id,
        url=row.url,
        host=row.host,
        status=row.status,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        submissions=row.submissions,
        language=row.language,
        crawled_at=when(row.crawled_at),
        crawl_error=row.crawl_error,
        crawl_attempts=row.crawl_attempts,
        next_crawl_at=when(row.next_crawl_at),
        attribution=Attribution.from_json(attribution) if attribution else None,
        first_notice_at=when(row.first_notice_at),
        last_notice_at=when(row.last_notice_at),
        notices_sent=row.notices_sent,
        next_notice_at=when(row.next_notice_at),
        escalated=bool(row.escalated),
        next_recheck_at=when(row.next_recheck_at),
        recheck_attempts=row.recheck_attempts,
        removed_at=when(row.removed_at),
        reappearances=row.reappearances,
        media_urls=tuple(json.loads(row.media_urls or "[]")),
    )


def item_of(row: Row[Any]) -> HotlineItem:
    return HotlineItem(
        id=row.id,
        report_id=row.report_id,
        media_url=row.media_url,
        sha256=row.sha256,
        status=row.status,
        first_seen=as_utc(row.first_seen),
        last_seen=as_utc(row.last_seen),
        md5=row.md5,
        pdq=row.pdq,
        size=row.size,
        mime=row.mime,
        media_kind=row.media_kind,
        matches=tuple(json.loads(row.matches or "[]")),
        evidence_id=row.evidence_id,
        assessment=row.assessment,
        jurisdiction=row.jurisdiction,
        assessed_by=row.assessed_by,
        assessed_at=when(row.assessed_at),
        note=row.note,
        online=bool(row.online),
        removed_at=when(row.removed_at),
        reappearances=row.reappearances,
    )


def notice_of(row: Row[Any]) -> Notice:
    return Notice(
        id=row.id,
        report_id=row.report_id,
        kind=row.kind,
        channel=row.channel,
        recipient=row.recipient,
        at=as_utc(row.at),
        language=row.language,
        ok=bool(row.ok),
        error=row.error,
        detail=json.loads(row.detail or "{}"),
    )


def submission_of(row: Row[Any]) -> Submission:
    return Submission(
        id=row.id,
        report_id=row.report_id,
        at=as_utc(row.at),
        channel=row.channel,
        reporter=row.reporter,
        language=row.language,
        contact=row.contact,
        comment=row.comment,
    )
