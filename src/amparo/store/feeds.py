"""Federation feeds, their grants and opinions, and the reads a feed page is made of.

A feed's page is its bank's change log after a cursor ``(seq, id)``: the entries whose
change-log position is past it, in ``(seq, id)`` order (the index ``ix_entry_bank_seq``
serves it), each in its current state. Positions become visible in increasing order (see
:mod:`amparo.store.changelog`), so a page read up to the newest committed position never
skips an entry a later page would need.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from amparo.clock import as_utc
from amparo.errors import ConflictError, NotFoundError
from amparo.exchanges.feed_model import Feed, FeedCursor, FeedOpinion, Grant, OpinionCount
from amparo.store.entry_rows import NOT_VARIANT, json_object, tags_of
from amparo.store.models import BankRow, CounterRow, EntryRow
from amparo.store.models_feeds import FeedGrantRow, FeedOpinionRow, FeedRow
from amparo.store.uow import Database

_feed = cast(Table, FeedRow.__table__)
_grant = cast(Table, FeedGrantRow.__table__)
_opinion = cast(Table, FeedOpinionRow.__table__)
_bank = cast(Table, BankRow.__table__)
_entry = cast(Table, EntryRow.__table__)
_counter = cast(Table, CounterRow.__table__)
_SEQ = select(_counter.c.value).where(_counter.c.name == "entry_seq")
_FEED_WITH_BANK = select(_feed, _bank.c.name.label("bank_name")).join(
    _bank, _bank.c.id == _feed.c.bank_id
)


@dataclass(frozen=True)
class ChangeRow:
    """One entry of a bank's change log, in its current state."""

    id: int
    seq: int
    signal_type: str
    signal: str
    category: str | None
    tags: list[str]
    active: bool
    """Neither removed nor disabled: a live entry (else the feed says it is withdrawn)."""
    added_at: datetime
    provenance: dict[str, Any] | None


class FeedRepository:
    """Feeds, grants and opinions in one database; writes are audit-logged in the same
    transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- feeds ------------------------------------------------------------------------------

    def create(
        self, name: str, bank_id: int, description: str, *, now: datetime, actor: str
    ) -> Feed:
        try:
            with self.db.transaction(refresh=False) as tx:
                tx.conn.execute(
                    insert(_feed).values(
                        name=name,
                        bank_id=bank_id,
                        description=description,
                        created_at=now,
                        enabled=True,
                    )
                )
                tx.audit(actor, "feed.publish", f"feed:{name}", {"bank_id": bank_id})
        except IntegrityError:
            raise ConflictError(
                f"a feed named {name!r} already exists",
                hint="choose another name, or `amparo feeds unpublish` the old one first",
            ) from None
        return self.get(name)

    def delete(self, name: str, *, actor: str) -> None:
        feed = self.get(name)
        with self.db.transaction(refresh=False) as tx:
            tx.conn.execute(delete(_opinion).where(_opinion.c.feed_id == feed.id))
            tx.conn.execute(delete(_grant).where(_grant.c.feed_id == feed.id))
            tx.conn.execute(delete(_feed).where(_feed.c.id == feed.id))
            tx.audit(actor, "feed.unpublish", f"feed:{name}", {"bank": feed.bank})

    def find(self, name: str) -> Feed | None:
        """The feed named ``name`` with its grants, or None (also when its bank is gone)."""
        with self.db.reading() as conn:
            row = conn.execute(_FEED_WITH_BANK.where(_feed.c.name == name)).first()
            if row is None:
                return None
            grants = conn.execute(
                select(_grant).where(_grant.c.feed_id == row.id).order_by(_grant.c.key_name)
            ).all()
        return _feed_of(row, tuple(_grant_of(g, row.name) for g in grants))

    def get(self, name: str) -> Feed:
        feed = self.find(name)
        if feed is None:
            raise NotFoundError(f"no feed named {name!r}", hint="see `amparo feeds list`")
        return feed

    def list(self, *, key_name: str | None = None) -> builtins.list[Feed]:
        """Every feed, or (``key_name``) those with an active grant to that key."""
        query = _FEED_WITH_BANK.order_by(_feed.c.name)
        if key_name is not None:
            query = query.where(
                _feed.c.id.in_(
                    select(_grant.c.feed_id).where(
                        _grant.c.key_name == key_name, _grant.c.revoked_at.is_(None)
                    )
                )
            )
        with self.db.reading() as conn:
            rows = conn.execute(query).all()
            grants: dict[int, list[Any]] = {}
            for g in conn.execute(select(_grant).order_by(_grant.c.key_name)):
                grants.setdefault(int(g.feed_id), []).append(g)
        return [
            _feed_of(r, tuple(_grant_of(g, r.name) for g in grants.get(int(r.id), [])))
            for r in rows
        ]

    # -- grants -----------------------------------------------------------------------------

    def grant(
        self,
        feed: Feed,
        key_name: str,
        public_key: str | None,
        *,
        now: datetime,
        actor: str,
        details: dict[str, Any],
    ) -> Grant:
        """Grant (or re-grant, replacing the pinned key) ``feed`` to ``key_name``."""
        with self.db.transaction(refresh=False) as tx:
            existing = tx.conn.execute(
                select(_grant.c.id).where(
                    _grant.c.feed_id == feed.id, _grant.c.key_name == key_name
                )
            ).first()
            if existing is None:
                tx.conn.execute(
                    insert(_grant).values(
                        feed_id=feed.id,
                        key_name=key_name,
                        partner_public_key=public_key,
                        granted_at=now,
                    )
                )
            else:
                tx.conn.execute(
                    update(_grant)
                    .where(_grant.c.id == existing.id)
                    .values(partner_public_key=public_key, granted_at=now, revoked_at=None)
                )
            tx.audit(actor, "feed.grant", f"feed:{feed.name}", {"key": key_name, **details})
        grant = self.grant_of(feed, key_name)
        assert grant is not None
        return grant

    def revoke(self, feed: Feed, key_name: str, *, now: datetime, actor: str) -> bool:
        """Revoke a grant; False when there was no active one."""
        with self.db.transaction(refresh=False) as tx:
            result = tx.conn.execute(
                update(_grant)
                .where(
                    _grant.c.feed_id == feed.id,
                    _grant.c.key_name == key_name,
                    _grant.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
            if not result.rowcount:
                return False
            tx.audit(actor, "feed.revoke", f"feed:{feed.name}", {"key": key_name})
        return True

    def grant_of(self, feed: Feed, key_name: str) -> Grant | None:
        with self.db.reading() as conn:
            row = conn.execute(
                select(_grant).where(_grant.c.feed_id == feed.id, _grant.c.key_name == key_name)
            ).first()
        return None if row is None else _grant_of(row, feed.name)

    def record_ack(self, grant: Grant, cursor: str, *, now: datetime) -> None:
        """What the partner says it committed (not audit-logged: it is a read's by-product,
        recorded on every page)."""
        with self.db.transaction(refresh=False) as tx:
            tx.conn.execute(
                update(_grant)
                .where(_grant.c.id == grant.id)
                .values(ack_cursor=cursor, acked_at=now)
            )

    # -- the change log of a feed's bank -------------------------------------------------------

    def current_seq(self) -> int:
        with self.db.reading() as conn:
            return int(conn.execute(_SEQ).scalar_one())

    def changes(
        self, bank_id: int, after: FeedCursor, limit: int
    ) -> tuple[int, builtins.list[ChangeRow]]:
        """``(top, rows)``: the newest committed change-log position and up to ``limit``
        entries of the bank after ``after`` and not past ``top``, in ``(seq, id)`` order."""
        columns = select(
            _entry.c.id,
            _entry.c.seq,
            _entry.c.signal_type,
            _entry.c.signal,
            _entry.c.category,
            _entry.c.tags,
            _entry.c.enabled,
            _entry.c.removed_at,
            _entry.c.added_at,
            _entry.c.provenance,
        ).where(_entry.c.bank_id == bank_id, NOT_VARIANT)  # variants are never shared
        with self.db.reading() as conn:
            top = int(conn.execute(_SEQ).scalar_one())
            # Two exact index ranges rather than one row-value comparison: the rest of the
            # cursor's position (one import stamps a million entries with the same seq), then
            # the positions after it. A row-value range would rescan the position's earlier
            # entries on every page.
            rows = list(
                conn.execute(
                    columns.where(_entry.c.seq == after.seq, _entry.c.id > after.id)
                    .order_by(_entry.c.id)
                    .limit(limit)
                )
            )
            if len(rows) < limit:
                rows += conn.execute(
                    columns.where(_entry.c.seq > after.seq, _entry.c.seq <= top)
                    .order_by(_entry.c.seq, _entry.c.id)
                    .limit(limit - len(rows))
                ).all()
        return top, [
            ChangeRow(
                id=int(r.id),
                seq=int(r.seq),
                signal_type=r.signal_type,
                signal=r.signal,
                category=r.category,
                tags=tags_of(r.tags),
                active=bool(r.enabled) and r.removed_at is None,
                added_at=as_utc(r.added_at) or r.added_at,
                provenance=json_object(r.provenance),
            )
            for r in rows
        ]

    def withdrawals_after(self, bank_id: int, after: FeedCursor | None) -> int:
        """Entries of the bank withdrawn (removed or disabled) after ``after`` (None: all):
        what a partner that acknowledged ``after`` has not yet confirmed."""
        query = (
            select(func.count())
            .select_from(_entry)
            .where(
                _entry.c.bank_id == bank_id,
                NOT_VARIANT,
                or_(_entry.c.removed_at.is_not(None), _entry.c.enabled.is_(False)),
            )
        )
        if after is not None:
            query = query.where(tuple_(_entry.c.seq, _entry.c.id) > tuple_(after.seq, after.id))
        with self.db.reading() as conn:
            return int(conn.execute(query).scalar_one())

    def entry_in_bank(self, bank_id: int, entry_id: int) -> tuple[str, str] | None:
        """``(signal type, signal)`` of an entry of the bank, or None."""
        with self.db.reading() as conn:
            row = conn.execute(
                select(_entry.c.signal_type, _entry.c.signal).where(
                    _entry.c.id == entry_id, _entry.c.bank_id == bank_id, NOT_VARIANT
                )
            ).first()
        return None if row is None else (row.signal_type, row.signal)

    # -- opinions ---------------------------------------------------------------------------

    def record_opinion(
        self, feed: Feed, opinion: FeedOpinion, signature: str | None, *, actor: str
    ) -> bool:
        """Store a partner's opinion, replacing an older one of the same partner on the same
        entry; False (nothing changed) when the stored one is as new or newer (a replay)."""
        values = {
            "partner": opinion.partner,
            "verdict": opinion.verdict,
            "reason": opinion.reason,
            "at": opinion.at,
            "received_at": opinion.received_at,
            "signature": signature,
            "verified": opinion.verified,
        }
        with self.db.transaction(refresh=False) as tx:
            existing = tx.conn.execute(
                select(_opinion.c.id, _opinion.c.at).where(
                    _opinion.c.feed_id == feed.id,
                    _opinion.c.entry_id == opinion.entry_id,
                    _opinion.c.key_name == opinion.key_name,
                )
            ).first()
            if existing is None:
                tx.conn.execute(
                    insert(_opinion).values(
                        feed_id=feed.id,
                        entry_id=opinion.entry_id,
                        key_name=opinion.key_name,
                        **values,
                    )
                )
            elif existing.at >= opinion.at:
                return False
            else:
                tx.conn.execute(
                    update(_opinion).where(_opinion.c.id == existing.id).values(**values)
                )
            tx.audit(
                actor,
                "feed.opinion",
                f"feed:{feed.name}",
                {
                    "entry_id": opinion.entry_id,
                    "partner": opinion.partner,
                    "verdict": opinion.verdict,
                    "reason": opinion.reason,
                    "verified": opinion.verified,
                },
            )
        return True

    def opinion_counts(self, feed: Feed) -> builtins.list[OpinionCount]:
        """Per entry of the feed: partners' verdicts, entries with the most false positives
        first."""
        with self.db.reading() as conn:
            rows = conn.execute(
                select(
                    _opinion.c.entry_id,
                    _opinion.c.key_name,
                    _opinion.c.verdict,
                    _entry.c.signal_type,
                )
                .select_from(
                    _opinion.outerjoin(
                        _entry,
                        and_(_entry.c.id == _opinion.c.entry_id, _entry.c.bank_id == feed.bank_id),
                    )
                )
                .where(_opinion.c.feed_id == feed.id)
                .order_by(_opinion.c.entry_id, _opinion.c.key_name)
            ).all()
        by_entry: dict[int, tuple[str | None, dict[str, str]]] = {}
        for r in rows:
            by_entry.setdefault(int(r.entry_id), (r.signal_type, {}))[1][r.key_name] = r.verdict
        counts = [
            OpinionCount(
                entry_id=entry_id,
                signal_type=signal_type,
                true_positive=sum(v == "true_positive" for v in partners.values()),
                false_positive=sum(v == "false_positive" for v in partners.values()),
                partners=partners,
            )
            for entry_id, (signal_type, partners) in by_entry.items()
        ]
        counts.sort(key=lambda c: (-c.false_positive, c.entry_id))
        return counts

    def opinions(self, feed: Feed, entry_ids: Sequence[int] = ()) -> builtins.list[FeedOpinion]:
        query = select(_opinion).where(_opinion.c.feed_id == feed.id)
        if entry_ids:
            query = query.where(_opinion.c.entry_id.in_([int(i) for i in entry_ids]))
        with self.db.reading() as conn:
            rows = conn.execute(query.order_by(_opinion.c.entry_id, _opinion.c.key_name)).all()
        return [
            FeedOpinion(
                feed=feed.name,
                entry_id=int(r.entry_id),
                key_name=r.key_name,
                partner=r.partner,
                verdict=r.verdict,
                reason=r.reason,
                at=r.at,
                received_at=as_utc(r.received_at) or r.received_at,
                verified=bool(r.verified),
            )
            for r in rows
        ]


def _feed_of(row: Any, grants: tuple[Grant, ...]) -> Feed:
    return Feed(
        id=int(row.id),
        name=row.name,
        bank=row.bank_name,
        bank_id=int(row.bank_id),
        description=row.description or "",
        created_at=as_utc(row.created_at) or row.created_at,
        enabled=bool(row.enabled),
        grants=grants,
    )


def _grant_of(row: Any, feed: str) -> Grant:
    return Grant(
        id=int(row.id),
        feed=feed,
        key_name=row.key_name,
        granted_at=as_utc(row.granted_at) or row.granted_at,
        partner_public_key=row.partner_public_key,
        ack_cursor=row.ack_cursor,
        acked_at=as_utc(row.acked_at),
        revoked_at=as_utc(row.revoked_at),
    )
