"""What reviewers saw and when they were signed in: reveals of clear media (the daily
exposure count) and browser sign-ins (only a SHA-256 of the cookie's token is stored)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, func, insert, select, update

from amparo.clock import as_utc
from amparo.review.model import SignIn
from amparo.store.models_hotline import HotlineItemRow, HotlineRevealRow
from amparo.store.review.rows import case_of_item, item_t, reveal_t, session_t
from amparo.store.uow import Database

hotline_reveal_t = cast(Table, HotlineRevealRow.__table__)
hotline_item_t = cast(Table, HotlineItemRow.__table__)


class RevealRepository:
    """The ``review_reveals`` table (and the items' ``viewed`` flag), and the hotline's
    ``hotline_reveals``: one daily exposure count across both."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def reveal(
        self,
        item_id: int,
        reviewer: str,
        at: datetime,
        *,
        since: datetime,
        actor: str,
        limit: int | None = None,
    ) -> int | None:
        """Record a reveal (and mark the item viewed); return the number of distinct items
        the reviewer has revealed since ``since``, this one included.

        With a ``limit``: a new item past ``limit`` distinct items since ``since`` is refused
        (``None``, nothing recorded), checked in the same serialised transaction as the write
        so concurrent reveals cannot pass the limit together."""

        def write(conn: Connection) -> tuple[str, str]:
            case_id = case_of_item(conn, item_id)
            conn.execute(insert(reveal_t).values(item_id=item_id, reviewer=reviewer, at=at))
            conn.execute(update(item_t).where(item_t.c.id == item_id).values(viewed=True))
            return "case.reveal", f"case:{case_id}"

        return self._counted(("case", item_id), reviewer, at, since, actor, limit, write)

    def reveal_hotline(
        self,
        item_id: int,
        reviewer: str,
        at: datetime,
        *,
        since: datetime,
        actor: str,
        limit: int | None = None,
    ) -> int | None:
        """:meth:`reveal` for a hotline item (an analyst assessing unknown media): counted
        with the case items against the same limit; audit-logged ``hotline.reveal``."""

        def write(conn: Connection) -> tuple[str, str]:
            report_id = conn.execute(
                select(hotline_item_t.c.report_id).where(hotline_item_t.c.id == item_id)
            ).scalar()
            conn.execute(insert(hotline_reveal_t).values(item_id=item_id, reviewer=reviewer, at=at))
            return "hotline.reveal", f"url-report:{report_id}"

        return self._counted(("hotline", item_id), reviewer, at, since, actor, limit, write)

    def _counted(
        self,
        key: tuple[str, int],
        reviewer: str,
        at: datetime,
        since: datetime,
        actor: str,
        limit: int | None,
        write: Callable[[Connection], tuple[str, str]],
    ) -> int | None:
        """One reveal of ``key`` (``("case", id)`` or ``("hotline", id)``) in one serialised
        transaction: refused (``None``) for a new item past ``limit``; else ``write`` records
        it and names the audit action and target, audited with the count since ``since``."""
        with self._db.transaction(refresh=False) as tx:
            tx.hold_audit()
            seen = _revealed_items(tx.conn, reviewer, since)
            if limit is not None and key not in seen and len(seen) >= limit:
                return None
            action, target = write(tx.conn)
            count = len(seen | {key}) if at >= since else len(seen)
            tx.audit(
                actor,
                action,
                target,
                {"item": key[1], "reviewer": reviewer, "revealed_today": count},
            )
        return count

    def last_hotline_reveal(self, item_id: int, reviewer: str) -> datetime | None:
        with self._db.reading() as conn:
            found = conn.execute(
                select(func.max(hotline_reveal_t.c.at)).where(
                    hotline_reveal_t.c.item_id == item_id,
                    hotline_reveal_t.c.reviewer == reviewer,
                )
            ).scalar()
        return as_utc(found) if found is not None else None

    def revealed_items(self, reviewer: str, since: datetime) -> set[tuple[str, int]]:
        """The items the reviewer revealed since ``since``: ``("case", id)`` and
        ``("hotline", id)``."""
        with self._db.reading() as conn:
            return _revealed_items(conn, reviewer, since)

    def last_reveal(self, item_id: int, reviewer: str) -> datetime | None:
        with self._db.reading() as conn:
            found = conn.execute(
                select(func.max(reveal_t.c.at)).where(
                    reveal_t.c.item_id == item_id, reveal_t.c.reviewer == reviewer
                )
            ).scalar()
        return as_utc(found) if found is not None else None


def _revealed_items(conn: Connection, reviewer: str, since: datetime) -> set[tuple[str, int]]:
    seen: set[tuple[str, int]] = set()
    for kind, table in (("case", reveal_t), ("hotline", hotline_reveal_t)):
        rows = conn.execute(
            select(table.c.item_id)
            .where(table.c.reviewer == reviewer, table.c.at >= since)
            .distinct()
        )
        seen.update((kind, int(r.item_id)) for r in rows)
    return seen


class SignInRepository:
    """The ``review_sessions`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, sign_in: SignIn) -> None:
        """Store a new sign-in (and drop those expired by its creation)."""
        with self._db.transaction(refresh=False) as tx:
            tx.conn.execute(delete(session_t).where(session_t.c.expires_at < sign_in.created_at))
            tx.conn.execute(insert(session_t).values(**sign_in.__dict__))

    def get(self, token_hash: str) -> SignIn | None:
        with self._db.reading() as conn:
            row = conn.execute(
                select(session_t).where(session_t.c.token_hash == token_hash)
            ).first()
        return None if row is None else _sign_in(row)

    def touch(self, token_hash: str, *, active: datetime, streak_started: datetime) -> None:
        with self._db.transaction(refresh=False) as tx:
            tx.conn.execute(
                update(session_t)
                .where(session_t.c.token_hash == token_hash)
                .values(last_active_at=active, streak_started_at=streak_started)
            )

    def delete(self, token_hash: str) -> None:
        with self._db.transaction(refresh=False) as tx:
            tx.conn.execute(delete(session_t).where(session_t.c.token_hash == token_hash))


def _sign_in(row: Any) -> SignIn:
    return SignIn(
        token_hash=row.token_hash,
        key_id=int(row.key_id),
        key_name=row.key_name,
        csrf=row.csrf,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
        last_active_at=as_utc(row.last_active_at),
        streak_started_at=as_utc(row.streak_started_at),
    )
