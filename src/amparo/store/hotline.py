"""Persistence of the hotline pipeline: URL reports and their submissions, the items found
behind them, notices, and the RDAP cache (tables in :mod:`amparo.store.models_hotline`).

Every write opens (or joins) a unit of work, so a service can put several writes and their
audit entry in one transaction. Only URLs, hashes and match results are kept, never media or
page HTML.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from amparo.clock import as_utc
from amparo.errors import ConflictError, NotFoundError
from amparo.hotline.model import (
    OPEN_REPORT_STATUSES,
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
from amparo.store.uow import Database

_report = cast(Table, HotlineReportRow.__table__)
_submission = cast(Table, HotlineSubmissionRow.__table__)
_item = cast(Table, HotlineItemRow.__table__)
_notice = cast(Table, HotlineNoticeRow.__table__)
_rdap = cast(Table, RdapCacheRow.__table__)

_REPORT_FIELDS = frozenset(
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
_ITEM_FIELDS = frozenset(
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


def _dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _when(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def _report_of(row: Row[Any]) -> UrlReport:
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
        crawled_at=_when(row.crawled_at),
        crawl_error=row.crawl_error,
        crawl_attempts=row.crawl_attempts,
        next_crawl_at=_when(row.next_crawl_at),
        attribution=Attribution.from_json(attribution) if attribution else None,
        first_notice_at=_when(row.first_notice_at),
        last_notice_at=_when(row.last_notice_at),
        notices_sent=row.notices_sent,
        next_notice_at=_when(row.next_notice_at),
        escalated=bool(row.escalated),
        next_recheck_at=_when(row.next_recheck_at),
        recheck_attempts=row.recheck_attempts,
        removed_at=_when(row.removed_at),
        reappearances=row.reappearances,
        media_urls=tuple(json.loads(row.media_urls or "[]")),
    )


def _item_of(row: Row[Any]) -> HotlineItem:
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
        assessed_at=_when(row.assessed_at),
        note=row.note,
        online=bool(row.online),
        removed_at=_when(row.removed_at),
        reappearances=row.reappearances,
    )


def _notice_of(row: Row[Any]) -> Notice:
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


def _submission_of(row: Row[Any]) -> Submission:
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


class HotlineRepository:
    """URL reports, submissions, items, notices and the RDAP cache."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reports ----------------------------------------------------------------------------

    def submit(
        self,
        url: str,
        url_key: str,
        host: str,
        *,
        at: datetime,
        channel: str,
        reporter: str | None = None,
        language: str = "en",
        contact: str | None = None,
        comment: str | None = None,
    ) -> tuple[UrlReport, bool]:
        """Record one report of ``url``: it joins the URL's open report if there is one
        (``True``), else opens a new one (``False``)."""
        with self.db.transaction(refresh=False) as tx:
            conn = tx.conn
            existing = self._open_id(conn, url_key)
            joined = existing is not None
            if existing is None:
                try:
                    # A savepoint: a concurrent report of the same URL that wins the unique
                    # open key leaves this transaction usable (PostgreSQL aborts it otherwise).
                    with conn.begin_nested():
                        existing = conn.execute(
                            insert(_report)
                            .values(
                                url=url,
                                url_key=url_key,
                                open_key=url_key,
                                host=host,
                                status="new",
                                language=language,
                                created_at=at,
                                updated_at=at,
                                submissions=1,
                                crawl_attempts=0,
                                next_crawl_at=at,
                                notices_sent=0,
                                escalated=False,
                                recheck_attempts=0,
                                reappearances=0,
                                media_urls="[]",
                            )
                            .returning(_report.c.id)
                        ).scalar_one()
                except IntegrityError:
                    existing = self._open_id(conn, url_key)
                    if existing is None:
                        raise ConflictError(
                            "the URL's report changed concurrently", hint="report it again"
                        ) from None
                    joined = True
            if joined:
                conn.execute(
                    update(_report)
                    .where(_report.c.id == existing)
                    .values(submissions=_report.c.submissions + 1, updated_at=at)
                )
            conn.execute(
                insert(_submission).values(
                    report_id=existing,
                    at=at,
                    channel=channel,
                    reporter=reporter,
                    language=language,
                    contact=contact,
                    comment=comment,
                )
            )
            return self._get(conn, existing), joined

    @staticmethod
    def _open_id(conn: Connection, url_key: str) -> int | None:
        found = conn.execute(
            select(_report.c.id).where(_report.c.open_key == url_key).with_for_update()
        ).scalar()
        return int(found) if found is not None else None

    def get(self, report_id: int) -> UrlReport:
        with self.db.reading() as conn:
            return self._get(conn, report_id)

    def _get(self, conn: Connection, report_id: int) -> UrlReport:
        row = conn.execute(select(_report).where(_report.c.id == report_id)).first()
        if row is None:
            raise NotFoundError(
                f"no URL report {report_id}", hint="list them with `amparo hotline list`"
            )
        return _report_of(row)

    def find_open(self, url_key: str) -> UrlReport | None:
        with self.db.reading() as conn:
            row = conn.execute(select(_report).where(_report.c.open_key == url_key)).first()
        return _report_of(row) if row is not None else None

    def list(
        self,
        *,
        statuses: Sequence[str] | None = None,
        host: str | None = None,
        country: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> builtins.list[UrlReport]:
        query = select(_report).where(*self._filters(statuses, host, country))
        with self.db.reading() as conn:
            rows = conn.execute(
                query.order_by(_report.c.id.desc()).limit(limit).offset(offset)
            ).all()
        return [_report_of(row) for row in rows]

    def count(
        self,
        *,
        statuses: Sequence[str] | None = None,
        host: str | None = None,
        country: str | None = None,
    ) -> int:
        query = select(func.count()).select_from(_report)
        with self.db.reading() as conn:
            return int(
                conn.execute(query.where(*self._filters(statuses, host, country))).scalar() or 0
            )

    @staticmethod
    def _filters(
        statuses: Sequence[str] | None, host: str | None, country: str | None
    ) -> builtins.list[Any]:
        where: builtins.list[Any] = []
        if statuses:
            where.append(_report.c.status.in_(list(statuses)))
        if host:
            where.append(_report.c.host == host)
        if country:
            where.append(_report.c.country == country.upper())
        return where

    def each(self, chunk: int = 1000) -> Iterator[UrlReport]:
        """Every report, oldest first, read in chunks (the figures walk them all)."""
        last = 0
        while True:
            with self.db.reading() as conn:
                rows = conn.execute(
                    select(_report).where(_report.c.id > last).order_by(_report.c.id).limit(chunk)
                ).all()
            if not rows:
                return
            for row in rows:
                yield _report_of(row)
            last = rows[-1].id

    def update(self, report_id: int, *, at: datetime, **values: Any) -> UrlReport:
        """Change a report's handling fields (see ``_REPORT_FIELDS``); ``attribution`` is an
        :class:`Attribution` (its country and provider are kept in columns too),
        ``media_urls`` a sequence. A status that closes the report frees its URL for a new
        one; reopening takes it back (when no newer report holds it)."""
        unknown = set(values) - _REPORT_FIELDS
        if unknown:
            raise TypeError(f"not report fields: {sorted(unknown)}")
        row_values: dict[str, Any] = dict(values, updated_at=at)
        if "attribution" in values:
            attribution: Attribution | None = values["attribution"]
            row_values["attribution"] = _dumps(attribution.to_json()) if attribution else None
            row_values["country"] = attribution.country if attribution else None
            row_values["provider"] = (
                attribution.provider[:255] if attribution and attribution.provider else None
            )
        if "media_urls" in values:
            row_values["media_urls"] = _dumps(list(values["media_urls"]))
        with self.db.transaction(refresh=False) as tx:
            conn = tx.conn
            if "status" in values:
                current = self._get(conn, report_id)
                url_key = conn.execute(
                    select(_report.c.url_key).where(_report.c.id == report_id)
                ).scalar_one()
                if values["status"] in OPEN_REPORT_STATUSES:
                    if current.status not in OPEN_REPORT_STATUSES:
                        taken = conn.execute(
                            select(_report.c.id).where(_report.c.open_key == url_key)
                        ).scalar()
                        if taken is None:
                            row_values["open_key"] = url_key
                else:
                    row_values["open_key"] = None
            conn.execute(update(_report).where(_report.c.id == report_id).values(**row_values))
            return self._get(conn, report_id)

    def due(
        self, column: str, statuses: Sequence[str], now: datetime, limit: int
    ) -> builtins.list[int]:
        """Ids of reports in ``statuses`` whose ``column`` (``next_crawl_at``,
        ``next_notice_at``, ``next_recheck_at``) is due by ``now``, the longest waiting first."""
        when = _report.c[column]
        with self.db.reading() as conn:
            rows = conn.execute(
                select(_report.c.id)
                .where(_report.c.status.in_(list(statuses)), when.is_not(None), when <= now)
                .order_by(when, _report.c.id)
                .limit(limit)
            ).all()
        return [row.id for row in rows]

    def submissions(self, report_id: int) -> builtins.list[Submission]:
        with self.db.reading() as conn:
            rows = conn.execute(
                select(_submission)
                .where(_submission.c.report_id == report_id)
                .order_by(_submission.c.id)
            ).all()
        return [_submission_of(row) for row in rows]

    # -- items ------------------------------------------------------------------------------

    def add_item(
        self,
        report_id: int,
        *,
        media_url: str,
        sha256: str,
        status: str,
        at: datetime,
        **values: Any,
    ) -> tuple[HotlineItem, bool]:
        """The report's item for this content: a new one (``True``), or the one it has, seen
        again (``last_seen`` moved, ``False``). ``values``: more of ``_ITEM_FIELDS``;
        ``matches`` a sequence of match dicts."""
        unknown = set(values) - _ITEM_FIELDS
        if unknown:
            raise TypeError(f"not item fields: {sorted(unknown)}")
        with self.db.transaction(refresh=False) as tx:
            conn = tx.conn
            row = conn.execute(
                select(_item).where(_item.c.report_id == report_id, _item.c.sha256 == sha256)
            ).first()
            if row is not None:
                conn.execute(update(_item).where(_item.c.id == row.id).values(last_seen=at))
                return self._item(conn, row.id), False
            row_values = dict(values)
            row_values["matches"] = _dumps(list(values.get("matches", ())))
            item_id = conn.execute(
                insert(_item)
                .values(
                    report_id=report_id,
                    media_url=media_url,
                    sha256=sha256,
                    status=status,
                    first_seen=at,
                    last_seen=at,
                    online=True,
                    reappearances=0,
                    **{k: v for k, v in row_values.items() if k not in ("last_seen", "online")},
                )
                .returning(_item.c.id)
            ).scalar_one()
            return self._item(conn, item_id), True

    def item(self, item_id: int) -> HotlineItem:
        with self.db.reading() as conn:
            return self._item(conn, item_id)

    def _item(self, conn: Connection, item_id: int) -> HotlineItem:
        row = conn.execute(select(_item).where(_item.c.id == item_id)).first()
        if row is None:
            raise NotFoundError(
                f"no hotline item {item_id}", hint="`amparo hotline show REPORT` lists its items"
            )
        return _item_of(row)

    def items(self, report_id: int) -> builtins.list[HotlineItem]:
        with self.db.reading() as conn:
            rows = conn.execute(
                select(_item).where(_item.c.report_id == report_id).order_by(_item.c.id)
            ).all()
        return [_item_of(row) for row in rows]

    def update_item(self, item_id: int, **values: Any) -> HotlineItem:
        unknown = set(values) - _ITEM_FIELDS
        if unknown:
            raise TypeError(f"not item fields: {sorted(unknown)}")
        row_values = dict(values)
        if "matches" in values:
            row_values["matches"] = _dumps(list(values["matches"]))
        with self.db.transaction(refresh=False) as tx:
            self._item(tx.conn, item_id)
            tx.conn.execute(update(_item).where(_item.c.id == item_id).values(**row_values))
            return self._item(tx.conn, item_id)

    def waiting_items(self, *, limit: int = 50, offset: int = 0) -> builtins.list[HotlineItem]:
        """Unknown items waiting for an analyst, oldest first."""
        with self.db.reading() as conn:
            rows = conn.execute(
                select(_item)
                .where(_item.c.status == "unknown")
                .order_by(_item.c.first_seen, _item.c.id)
                .limit(limit)
                .offset(offset)
            ).all()
        return [_item_of(row) for row in rows]

    def count_waiting(self) -> int:
        with self.db.reading() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(_item).where(_item.c.status == "unknown")
                ).scalar()
                or 0
            )

    def removed_elsewhere(
        self, host: str, sha256: str, *, exclude_report: int
    ) -> builtins.list[int]:
        """Reports at ``host`` whose item of this content was removed (a reappearance of it
        counts against the provider)."""
        with self.db.reading() as conn:
            rows = conn.execute(
                select(_item.c.report_id)
                .join(_report, _report.c.id == _item.c.report_id)
                .where(
                    _report.c.host == host,
                    _item.c.sha256 == sha256,
                    _item.c.removed_at.is_not(None),
                    _item.c.report_id != exclude_report,
                )
            ).all()
        return sorted({row.report_id for row in rows})

    # -- notices ----------------------------------------------------------------------------

    def add_notice(
        self,
        report_id: int,
        *,
        kind: str,
        channel: str,
        recipient: str,
        at: datetime,
        language: str,
        ok: bool,
        error: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Notice:
        with self.db.transaction(refresh=False) as tx:
            notice_id = tx.conn.execute(
                insert(_notice)
                .values(
                    report_id=report_id,
                    kind=kind,
                    channel=channel,
                    recipient=recipient[:500],
                    at=at,
                    language=language,
                    ok=ok,
                    error=error,
                    detail=_dumps(detail or {}),
                )
                .returning(_notice.c.id)
            ).scalar_one()
            row = tx.conn.execute(select(_notice).where(_notice.c.id == notice_id)).one()
        return _notice_of(row)

    def notices(self, report_id: int | None = None) -> builtins.list[Notice]:
        query = select(_notice).order_by(_notice.c.id)
        if report_id is not None:
            query = query.where(_notice.c.report_id == report_id)
        with self.db.reading() as conn:
            return [_notice_of(row) for row in conn.execute(query).all()]

    def notice_counts(self) -> dict[int, int]:
        """Notices sent (ok) per report."""
        with self.db.reading() as conn:
            rows = conn.execute(
                select(_notice.c.report_id, func.count())
                .where(_notice.c.ok.is_(True))
                .group_by(_notice.c.report_id)
            ).all()
        return {row[0]: int(row[1]) for row in rows}

    # -- RDAP cache -------------------------------------------------------------------------

    def rdap_cached(self, key: str, *, newer_than: datetime) -> dict[str, Any] | None:
        with self.db.reading() as conn:
            row = conn.execute(
                select(_rdap).where(and_(_rdap.c.key == key, _rdap.c.fetched_at >= newer_than))
            ).first()
        return json.loads(row.answer) if row is not None else None

    def rdap_store(self, key: str, answer: dict[str, Any], *, at: datetime) -> None:
        with self.db.transaction(refresh=False) as tx:
            conn = tx.conn
            done = conn.execute(
                update(_rdap).where(_rdap.c.key == key).values(answer=_dumps(answer), fetched_at=at)
            ).rowcount
            if not done:
                conn.execute(insert(_rdap).values(key=key, answer=_dumps(answer), fetched_at=at))

    # -- assessment (hotline: assessment) ----------------------------------------------------

    def items_with_evidence(self, evidence_id: int) -> builtins.list[HotlineItem]:
        """Every item whose preserved copy is ``evidence_id`` (the same content seen behind
        several reports shares one copy)."""
        with self.db.reading() as conn:
            rows = conn.execute(
                select(_item).where(_item.c.evidence_id == evidence_id).order_by(_item.c.id)
            ).all()
        return [_item_of(row) for row in rows]

    # -- notices and forwards (hotline.notifying) -------------------------------------------

    def notice_due(self, now: datetime, limit: int) -> builtins.list[int]:
        """Ids of attributed reports whose notice is due: ``confirmed`` ones (a first notice,
        or a renewed one after a reappearance) unless ``next_notice_at`` lies ahead, and
        ``notified`` ones whose ``next_notice_at`` has come; the longest waiting first."""
        when = _report.c.next_notice_at
        confirmed = and_(_report.c.status == "confirmed", (when.is_(None)) | (when <= now))
        notified = and_(_report.c.status == "notified", when.is_not(None), when <= now)
        with self.db.reading() as conn:
            rows = conn.execute(
                select(_report.c.id)
                .where(_report.c.attribution.is_not(None), confirmed | notified)
                .order_by(func.coalesce(when, _report.c.updated_at), _report.c.id)
                .limit(limit)
            ).all()
        return [row.id for row in rows]

    # -- attribution (the scheduler's part: hotline/runner.py) -------------------------------

    def unattributed(self, statuses: Sequence[str], limit: int) -> builtins.list[int]:
        """Ids of reports in ``statuses`` with no attribution yet, oldest first."""
        with self.db.reading() as conn:
            rows = conn.execute(
                select(_report.c.id)
                .where(_report.c.status.in_(list(statuses)), _report.c.attribution.is_(None))
                .order_by(_report.c.id)
                .limit(limit)
            ).all()
        return [row.id for row in rows]


__all__ = ["HotlineRepository"]
