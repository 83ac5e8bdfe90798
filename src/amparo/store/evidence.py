"""The repository of the evidence store: ``evidence_items`` and ``evidence_sightings`` rows
(tables in :mod:`amparo.store.models_evidence`) in and out as the types of
:mod:`amparo.evidence.model`, one mapping each way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from amparo.clock import as_utc
from amparo.evidence.model import EvidenceItem, NewEvidence
from amparo.store.models_evidence import EvidenceRow, EvidenceSightingRow
from amparo.store.uow import Database

_items = cast(Table, EvidenceRow.__table__)
_sightings = cast(Table, EvidenceSightingRow.__table__)


_SIGHTING_COUNT = (
    select(func.count())
    .where(_sightings.c.item_id == _items.c.id)
    .correlate(_items)
    .scalar_subquery()
    .label("sighting_count")
)


def _item(r: Any) -> EvidenceItem:
    return EvidenceItem(
        id=int(r.id),
        uuid=r.uuid,
        sha256=r.sha256,
        md5=r.md5,
        size=int(r.size),
        mime=r.mime,
        media_kind=r.media_kind,
        file_name=r.file_name,
        source=json.loads(r.source),
        matches=tuple(json.loads(r.matches)),
        reason=r.reason,
        case_id=None if r.case_id is None else int(r.case_id),
        preserved_by=r.preserved_by,
        preserved_at=as_utc(r.preserved_at),
        expires_at=as_utc(r.expires_at),
        legal_hold=bool(r.legal_hold),
        hold_reason=r.hold_reason,
        purged_at=as_utc(r.purged_at),
        purge_reason=r.purge_reason,
        format_version=int(r.format_version),
        blob_size=int(r.blob_size),
        kek_id=r.kek_id,
        wrapped_key=None if r.wrapped_key is None else bytes(r.wrapped_key),
        sightings=int(r.sighting_count or 0),
    )


def _target(item_id: int) -> str:
    return f"evidence:{item_id}"


class EvidenceRepository:
    """Evidence rows in the store's database. Every change writes its audit entry in the
    same transaction (joining one the caller has open); reads of metadata are not audited
    (reads of content are, by the service)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _select(self) -> Any:
        return select(_items, _SIGHTING_COUNT)

    def get(self, item_id: int) -> EvidenceItem | None:
        with self._db.reading() as conn:
            row = conn.execute(self._select().where(_items.c.id == item_id)).first()
        return None if row is None else _item(row)

    def find_live(self, sha256: str) -> EvidenceItem | None:
        with self._db.reading() as conn:
            row = conn.execute(self._select().where(_items.c.live_sha256 == sha256)).first()
        return None if row is None else _item(row)

    def listing(
        self,
        *,
        sha256: str | None = None,
        case_id: int | None = None,
        include_purged: bool = False,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[EvidenceItem]:
        """Newest first; page with ``before_id`` (the last id of the previous page)."""
        query = self._select().order_by(_items.c.id.desc()).limit(limit)
        if sha256 is not None:
            query = query.where(_items.c.sha256 == sha256)
        if case_id is not None:
            query = query.where(_items.c.case_id == case_id)
        if not include_purged:
            query = query.where(_items.c.purged_at.is_(None))
        if before_id is not None:
            query = query.where(_items.c.id < before_id)
        with self._db.reading() as conn:
            return [_item(r) for r in conn.execute(query)]

    def iter_live(self, batch: int = 1000) -> Iterator[list[EvidenceItem]]:
        """Every item not purged, in id order, in batches (for verify and rotation)."""
        last = 0
        while True:
            with self._db.reading() as conn:
                rows = conn.execute(
                    self._select()
                    .where(_items.c.purged_at.is_(None), _items.c.id > last)
                    .order_by(_items.c.id)
                    .limit(batch)
                ).all()
            if not rows:
                return
            last = int(rows[-1].id)
            yield [_item(r) for r in rows]

    def live_uuids(self) -> set[str]:
        with self._db.reading() as conn:
            return {
                r.uuid
                for r in conn.execute(select(_items.c.uuid).where(_items.c.purged_at.is_(None)))
            }

    def insert(self, new: NewEvidence) -> int | None:
        """Insert a new item with its first sighting and audit entry; None when live
        content with the same SHA-256 was inserted meanwhile (by another process)."""
        try:
            with self._db.transaction(refresh=False) as tx:
                item_id = tx.conn.execute(
                    insert(_items)
                    .values(
                        uuid=new.uuid,
                        sha256=new.sha256,
                        live_sha256=new.sha256,
                        md5=new.md5,
                        size=new.size,
                        mime=new.mime,
                        media_kind=new.media_kind,
                        file_name=new.file_name,
                        source=json.dumps(new.source, default=str),
                        matches=json.dumps(new.matches, default=str),
                        reason=new.reason,
                        case_id=new.case_id,
                        preserved_by=new.actor,
                        preserved_at=new.at,
                        expires_at=new.expires_at,
                        legal_hold=False,
                        format_version=new.format_version,
                        blob_size=new.blob_size,
                        kek_id=new.kek_id,
                        wrapped_key=new.wrapped_key,
                    )
                    .returning(_items.c.id)
                ).scalar_one()
                self._insert_sighting(
                    tx.conn,
                    int(item_id),
                    new.at,
                    new.actor,
                    new.reason,
                    new.case_id,
                    new.source,
                    new.matches,
                )
                tx.audit(
                    new.actor,
                    "evidence.preserve",
                    _target(int(item_id)),
                    {
                        "sha256": new.sha256,
                        "size": new.size,
                        "reason": new.reason,
                        "case_id": new.case_id,
                        "source": new.source,
                        "expires_at": new.expires_at,
                    },
                )
        except IntegrityError:
            return None
        return int(item_id)

    @staticmethod
    def _insert_sighting(
        conn: Connection,
        item_id: int,
        at: datetime,
        actor: str,
        reason: str,
        case_id: int | None,
        source: dict[str, Any],
        matches: list[dict[str, Any]],
    ) -> None:
        conn.execute(
            insert(_sightings).values(
                item_id=item_id,
                at=at,
                actor=actor,
                reason=reason,
                case_id=case_id,
                source=json.dumps(source, default=str),
                matches=json.dumps(matches, default=str),
            )
        )

    def add_sighting(
        self,
        item_id: int,
        *,
        at: datetime,
        actor: str,
        reason: str,
        case_id: int | None,
        source: dict[str, Any],
        matches: list[dict[str, Any]],
        expires_at: datetime | None,
    ) -> None:
        """Record another request to preserve a live item; retention only ever grows
        (``expires_at`` None means kept until purged by hand); a case id fills a gap."""
        with self._db.transaction(refresh=False) as tx:
            row = tx.conn.execute(
                select(_items.c.expires_at, _items.c.case_id).where(_items.c.id == item_id)
            ).one()
            old = as_utc(row.expires_at)
            changes: dict[str, Any] = {}
            if old is not None and (expires_at is None or expires_at > old):
                changes["expires_at"] = expires_at
            if row.case_id is None and case_id is not None:
                changes["case_id"] = case_id
            if changes:
                tx.conn.execute(update(_items).where(_items.c.id == item_id).values(**changes))
            self._insert_sighting(tx.conn, item_id, at, actor, reason, case_id, source, matches)
            tx.audit(
                actor,
                "evidence.sighting",
                _target(item_id),
                {"reason": reason, "case_id": case_id, "source": source, **changes},
            )

    def sightings(self, item_id: int) -> list[dict[str, Any]]:
        with self._db.reading() as conn:
            rows = conn.execute(
                select(_sightings).where(_sightings.c.item_id == item_id).order_by(_sightings.c.id)
            )
            return [
                {
                    "at": as_utc(r.at),
                    "actor": r.actor,
                    "reason": r.reason,
                    "case_id": r.case_id,
                    "source": json.loads(r.source),
                    "matches": json.loads(r.matches),
                }
                for r in rows
            ]

    def set_hold(self, item_id: int, hold: bool, reason: str | None, *, actor: str) -> bool:
        """Place or lift a legal hold on a live item; False when no live item has the id."""
        with self._db.transaction(refresh=False) as tx:
            changed = tx.conn.execute(
                update(_items)
                .where(_items.c.id == item_id, _items.c.purged_at.is_(None))
                .values(legal_hold=hold, hold_reason=reason if hold else None)
            ).rowcount
            if changed:
                tx.audit(
                    actor,
                    "evidence.hold" if hold else "evidence.release",
                    _target(item_id),
                    {"reason": reason} if reason else {},
                )
        return bool(changed)

    def mark_purged(
        self,
        item_id: int,
        *,
        at: datetime,
        reason: str,
        action: str,
        actor: str,
        expired_by: datetime | None = None,
    ) -> bool:
        """Mark a live item purged and destroy its wrapped data key, unless it is on legal
        hold (or, with ``expired_by``, not yet expired by then). True when it was."""
        conditions = [
            _items.c.id == item_id,
            _items.c.purged_at.is_(None),
            _items.c.legal_hold.is_(False),
        ]
        if expired_by is not None:
            conditions.append(_items.c.expires_at <= expired_by)
        with self._db.transaction(refresh=False) as tx:
            sha256 = tx.conn.execute(select(_items.c.sha256).where(*conditions)).scalar()
            if sha256 is None:
                return False
            tx.conn.execute(
                update(_items)
                .where(*conditions)
                .values(
                    purged_at=at,
                    purge_reason=reason,
                    live_sha256=None,
                    wrapped_key=None,
                )
            )
            tx.audit(actor, action, _target(item_id), {"sha256": sha256, "reason": reason})
        return True

    def expired(self, now: datetime, *, after_id: int = 0, limit: int = 1000) -> list[EvidenceItem]:
        """Live items past their expiry and not on legal hold, in id order from ``after_id``."""
        with self._db.reading() as conn:
            return [
                _item(r)
                for r in conn.execute(
                    self._select()
                    .where(
                        _items.c.purged_at.is_(None),
                        _items.c.legal_hold.is_(False),
                        _items.c.expires_at <= now,
                        _items.c.id > after_id,
                    )
                    .order_by(_items.c.id)
                    .limit(limit)
                )
            ]

    def held_expired_count(self, now: datetime) -> int:
        with self._db.reading() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        _items.c.purged_at.is_(None),
                        _items.c.legal_hold.is_(True),
                        _items.c.expires_at <= now,
                    )
                ).scalar_one()
            )

    def rewrap(self, changes: list[tuple[int, str, str, bytes]]) -> int:
        """Swap wrapped keys in one transaction: ``(item id, old kek, new kek, wrapped)``;
        an item no longer wrapped by its ``old kek`` (rotated meanwhile) is left alone.
        Returns how many changed."""
        changed = 0
        with self._db.transaction(refresh=False) as tx:
            for item_id, old_kek, new_kek, wrapped in changes:
                changed += tx.conn.execute(
                    update(_items)
                    .where(
                        _items.c.id == item_id,
                        _items.c.kek_id == old_kek,
                        _items.c.wrapped_key.is_not(None),
                    )
                    .values(kek_id=new_kek, wrapped_key=wrapped)
                ).rowcount
        return changed

    def kek_usage(self) -> dict[str, int]:
        """How many live items each key-encryption key wraps."""
        with self._db.reading() as conn:
            rows = conn.execute(
                select(_items.c.kek_id, func.count())
                .where(_items.c.wrapped_key.is_not(None))
                .group_by(_items.c.kek_id)
            )
            return {str(r[0]): int(r[1]) for r in rows}

    # hotline: assessment

    def shorten_expiry(
        self, item_id: int, expires_at: datetime, *, actor: str, reason: str
    ) -> bool:
        """Bring a live item's expiry forward to ``expires_at`` (never later than it was;
        an item kept until purged by hand gets this expiry); audit-logged as
        ``evidence.retention``. False when no live item has the id or it already expires
        by then."""
        with self._db.transaction(refresh=False) as tx:
            row = tx.conn.execute(
                select(_items.c.expires_at).where(
                    _items.c.id == item_id, _items.c.purged_at.is_(None)
                )
            ).first()
            if row is None:
                return False
            old = as_utc(row.expires_at)
            if old is not None and old <= expires_at:
                return False
            tx.conn.execute(
                update(_items).where(_items.c.id == item_id).values(expires_at=expires_at)
            )
            tx.audit(
                actor,
                "evidence.retention",
                _target(item_id),
                {
                    "reason": reason,
                    "expires_at": expires_at.isoformat(),
                    "was": old.isoformat() if old else None,
                },
            )
        return True
