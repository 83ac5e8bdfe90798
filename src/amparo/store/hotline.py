"""Persistence of the hotline pipeline: URL reports and their submissions, the items found
behind them, notices, and the RDAP cache (tables in :mod:`amparo.store.models_hotline`).

Every write opens (or joins) a unit of work, so a service can put several writes and their
audit entry in one transaction. Only URLs, hashes and match results are kept, never media or
page HTML.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from amparo.errors import ConflictError, NotFoundError
from amparo.hotline.model import (
    OPEN_REPORT_STATUSES,
    Attribution,
    Submission,
    UrlReport,
)
from amparo.store.hotline_items import HotlineItemRecords, HotlineNoticeRecords
from amparo.store.hotline_rows import (
    REPORT_FIELDS,
    dumps,
    report_of,
    report_t,
    submission_of,
    submission_t,
)
from amparo.store.uow import Database


class HotlineRepository(HotlineItemRecords, HotlineNoticeRecords):
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
                            insert(report_t)
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
                            .returning(report_t.c.id)
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
                    update(report_t)
                    .where(report_t.c.id == existing)
                    .values(submissions=report_t.c.submissions + 1, updated_at=at)
                )
            conn.execute(
                insert(submission_t).values(
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
            select(report_t.c.id).where(report_t.c.open_key == url_key).with_for_update()
        ).scalar()
        return int(found) if found is not None else None

    def get(self, report_id: int) -> UrlReport:
        with self.db.reading() as conn:
            return self._get(conn, report_id)

    def _get(self, conn: Connection, report_id: int) -> UrlReport:
        row = conn.execute(select(report_t).where(report_t.c.id == report_id)).first()
        if row is None:
            raise NotFoundError(
                f"no URL report {report_id}", hint="list them with `amparo hotline list`"
            )
        return report_of(row)

    def find_open(self, url_key: str) -> UrlReport | None:
        with self.db.reading() as conn:
            row = conn.execute(select(report_t).where(report_t.c.open_key == url_key)).first()
        return report_of(row) if row is not None else None

    def list(
        self,
        *,
        statuses: Sequence[str] | None = None,
        host: str | None = None,
        country: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> builtins.list[UrlReport]:
        query = select(report_t).where(*self._filters(statuses, host, country))
        with self.db.reading() as conn:
            rows = conn.execute(
                query.order_by(report_t.c.id.desc()).limit(limit).offset(offset)
            ).all()
        return [report_of(row) for row in rows]

    def count(
        self,
        *,
        statuses: Sequence[str] | None = None,
        host: str | None = None,
        country: str | None = None,
    ) -> int:
        query = select(func.count()).select_from(report_t)
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
            where.append(report_t.c.status.in_(list(statuses)))
        if host:
            where.append(report_t.c.host == host)
        if country:
            where.append(report_t.c.country == country.upper())
        return where

    def each(self, chunk: int = 1000) -> Iterator[UrlReport]:
        """Every report, oldest first, read in chunks (the figures walk them all)."""
        last = 0
        while True:
            with self.db.reading() as conn:
                rows = conn.execute(
                    select(report_t)
                    .where(report_t.c.id > last)
                    .order_by(report_t.c.id)
                    .limit(chunk)
                ).all()
            if not rows:
                return
            for row in rows:
                yield report_of(row)
            last = rows[-1].id

    def update(self, report_id: int, *, at: datetime, **values: Any) -> UrlReport:
        """Change a report's handling fields (see ``REPORT_FIELDS``); ``attribution`` is an
        :class:`Attribution` (its country and provider are kept in columns too),
        ``media_urls`` a sequence. A status that closes the report frees its URL for a new
        one; reopening takes it back (when no newer report holds it)."""
        unknown = set(values) - REPORT_FIELDS
        if unknown:
            raise TypeError(f"not report fields: {sorted(unknown)}")
        row_values: dict[str, Any] = dict(values, updated_at=at)
        if "attribution" in values:
            attribution: Attribution | None = values["attribution"]
            row_values["attribution"] = dumps(attribution.to_json()) if attribution else None
            row_values["country"] = attribution.country if attribution else None
            row_values["provider"] = (
                attribution.provider[:255] if attribution and attribution.provider else None
            )
        if "media_urls" in values:
            row_values["media_urls"] = dumps(list(values["media_urls"]))
        with self.db.transaction(refresh=False) as tx:
            conn = tx.conn
            if "status" in values:
                current = self._get(conn, report_id)
                url_key = conn.execute(
                    select(report_t.c.url_key).where(report_t.c.id == report_id)
                ).scalar_one()
                if values["status"] in OPEN_REPORT_STATUSES:
                    if current.status not in OPEN_REPORT_STATUSES:
                        taken = conn.execute(
                            select(report_t.c.id).where(report_t.c.open_key == url_key)
                        ).scalar()
                        if taken is None:
                            row_values["open_key"] = url_key
                else:
                    row_values["open_key"] = None
            conn.execute(update(report_t).where(report_t.c.id == report_id).values(**row_values))
            return self._get(conn, report_id)

    def due(
        self, column: str, statuses: Sequence[str], now: datetime, limit: int
    ) -> builtins.list[int]:
        """Ids of reports in ``statuses`` whose ``column`` (``next_crawl_at``,
        ``next_notice_at``, ``next_recheck_at``) is due by ``now``, the longest waiting first."""
        when = report_t.c[column]
        with self.db.reading() as conn:
            rows = conn.execute(
                select(report_t.c.id)
                .where(report_t.c.status.in_(list(statuses)), when.is_not(None), when <= now)
                .order_by(when, report_t.c.id)
                .limit(limit)
            ).all()
        return [row.id for row in rows]

    def submissions(self, report_id: int) -> builtins.list[Submission]:
        with self.db.reading() as conn:
            rows = conn.execute(
                select(submission_t)
                .where(submission_t.c.report_id == report_id)
                .order_by(submission_t.c.id)
            ).all()
        return [submission_of(row) for row in rows]

    # -- attribution (the scheduler's part: hotline/runner.py) -------------------------------

    def unattributed(self, statuses: Sequence[str], limit: int) -> builtins.list[int]:
        """Ids of reports in ``statuses`` with no attribution yet, oldest first."""
        with self.db.reading() as conn:
            rows = conn.execute(
                select(report_t.c.id)
                .where(report_t.c.status.in_(list(statuses)), report_t.c.attribution.is_(None))
                .order_by(report_t.c.id)
                .limit(limit)
            ).all()
        return [row.id for row in rows]


__all__ = ["HotlineRepository"]
