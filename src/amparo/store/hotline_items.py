"""Persistence of what the hotline found and sent: items behind a reported URL, notices
and the RDAP cache (mixed into :class:`amparo.store.hotline.HotlineRepository`)."""

from __future__ import annotations

import builtins
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from amparo.errors import NotFoundError
from amparo.hotline.model import (
    HotlineItem,
    Notice,
)
from amparo.store.exchange_records import dialect_insert
from amparo.store.hotline_rows import (
    ITEM_FIELDS,
    dumps,
    item_of,
    item_t,
    notice_of,
    notice_t,
    rdap_t,
    report_t,
)
from amparo.store.uow import Database


class HotlineItemRecords:
    """The ``hotline_items`` table."""

    db: Database

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
        again (``last_seen`` moved, ``False``). ``values``: more of ``ITEM_FIELDS``;
        ``matches`` a sequence of match dicts."""
        unknown = set(values) - ITEM_FIELDS
        if unknown:
            raise TypeError(f"not item fields: {sorted(unknown)}")
        with self.db.transaction(refresh=False) as tx:
            conn = tx.conn
            row = conn.execute(
                select(item_t).where(item_t.c.report_id == report_id, item_t.c.sha256 == sha256)
            ).first()
            if row is not None:
                conn.execute(update(item_t).where(item_t.c.id == row.id).values(last_seen=at))
                return self._item(conn, row.id), False
            row_values = dict(values)
            row_values["matches"] = dumps(list(values.get("matches", ())))
            item_id = conn.execute(
                insert(item_t)
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
                .returning(item_t.c.id)
            ).scalar_one()
            return self._item(conn, item_id), True

    def item(self, item_id: int) -> HotlineItem:
        with self.db.reading() as conn:
            return self._item(conn, item_id)

    def _item(self, conn: Connection, item_id: int) -> HotlineItem:
        row = conn.execute(select(item_t).where(item_t.c.id == item_id)).first()
        if row is None:
            raise NotFoundError(
                f"no hotline item {item_id}", hint="`amparo hotline show REPORT` lists its items"
            )
        return item_of(row)

    def items(self, report_id: int) -> builtins.list[HotlineItem]:
        with self.db.reading() as conn:
            rows = conn.execute(
                select(item_t).where(item_t.c.report_id == report_id).order_by(item_t.c.id)
            ).all()
        return [item_of(row) for row in rows]

    def update_item(self, item_id: int, **values: Any) -> HotlineItem:
        unknown = set(values) - ITEM_FIELDS
        if unknown:
            raise TypeError(f"not item fields: {sorted(unknown)}")
        row_values = dict(values)
        if "matches" in values:
            row_values["matches"] = dumps(list(values["matches"]))
        with self.db.transaction(refresh=False) as tx:
            self._item(tx.conn, item_id)
            tx.conn.execute(update(item_t).where(item_t.c.id == item_id).values(**row_values))
            return self._item(tx.conn, item_id)

    def waiting_items(self, *, limit: int = 50, offset: int = 0) -> builtins.list[HotlineItem]:
        """Unknown items waiting for an analyst, oldest first."""
        with self.db.reading() as conn:
            rows = conn.execute(
                select(item_t)
                .where(item_t.c.status == "unknown")
                .order_by(item_t.c.first_seen, item_t.c.id)
                .limit(limit)
                .offset(offset)
            ).all()
        return [item_of(row) for row in rows]

    def count_waiting(self) -> int:
        with self.db.reading() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(item_t).where(item_t.c.status == "unknown")
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
                select(item_t.c.report_id)
                .join(report_t, report_t.c.id == item_t.c.report_id)
                .where(
                    report_t.c.host == host,
                    item_t.c.sha256 == sha256,
                    item_t.c.removed_at.is_not(None),
                    item_t.c.report_id != exclude_report,
                )
            ).all()
        return sorted({row.report_id for row in rows})

    # -- assessment (hotline: assessment) ----------------------------------------------------

    def items_with_evidence(self, evidence_id: int) -> builtins.list[HotlineItem]:
        """Every item whose preserved copy is ``evidence_id`` (the same content seen behind
        several reports shares one copy)."""
        with self.db.reading() as conn:
            rows = conn.execute(
                select(item_t).where(item_t.c.evidence_id == evidence_id).order_by(item_t.c.id)
            ).all()
        return [item_of(row) for row in rows]


class HotlineNoticeRecords:
    """The ``hotline_notices`` and ``hotline_rdap_cache`` tables."""

    db: Database

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
                insert(notice_t)
                .values(
                    report_id=report_id,
                    kind=kind,
                    channel=channel,
                    recipient=recipient[:500],
                    at=at,
                    language=language,
                    ok=ok,
                    error=error,
                    detail=dumps(detail or {}),
                )
                .returning(notice_t.c.id)
            ).scalar_one()
            row = tx.conn.execute(select(notice_t).where(notice_t.c.id == notice_id)).one()
        return notice_of(row)

    def notices(self, report_id: int | None = None) -> builtins.list[Notice]:
        query = select(notice_t).order_by(notice_t.c.id)
        if report_id is not None:
            query = query.where(notice_t.c.report_id == report_id)
        with self.db.reading() as conn:
            return [notice_of(row) for row in conn.execute(query).all()]

    def notice_counts(self) -> dict[int, int]:
        """Notices sent (ok) per report."""
        with self.db.reading() as conn:
            rows = conn.execute(
                select(notice_t.c.report_id, func.count())
                .where(notice_t.c.ok.is_(True))
                .group_by(notice_t.c.report_id)
            ).all()
        return {row[0]: int(row[1]) for row in rows}

    # -- RDAP cache -------------------------------------------------------------------------

    def rdap_cached(self, key: str, *, newer_than: datetime) -> dict[str, Any] | None:
        with self.db.reading() as conn:
            row = conn.execute(
                select(rdap_t).where(and_(rdap_t.c.key == key, rdap_t.c.fetched_at >= newer_than))
            ).first()
        return json.loads(row.answer) if row is not None else None

    def rdap_store(self, key: str, answer: dict[str, Any], *, at: datetime) -> None:
        values = {"key": key, "answer": dumps(answer), "fetched_at": at}
        with self.db.transaction(refresh=False) as tx:
            # One statement: two workers caching the same answer at once do not collide.
            statement = dialect_insert(tx.conn, rdap_t).values(**values)
            tx.conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[rdap_t.c.key],
                    set_={"answer": values["answer"], "fetched_at": at},
                )
            )

    # -- notices and forwards (hotline.notifying) -------------------------------------------

    def notice_due(self, now: datetime, limit: int) -> builtins.list[int]:
        """Ids of attributed reports whose notice is due: ``confirmed`` ones (a first notice,
        or a renewed one after a reappearance) unless ``next_notice_at`` lies ahead, and
        ``notified`` ones whose ``next_notice_at`` has come; the longest waiting first."""
        when = report_t.c.next_notice_at
        confirmed = and_(report_t.c.status == "confirmed", (when.is_(None)) | (when <= now))
        notified = and_(report_t.c.status == "notified", when.is_not(None), when <= now)
        with self.db.reading() as conn:
            rows = conn.execute(
                select(report_t.c.id)
                .where(report_t.c.attribution.is_not(None), confirmed | notified)
                .order_by(func.coalesce(when, report_t.c.updated_at), report_t.c.id)
                .limit(limit)
            ).all()
        return [row.id for row in rows]
