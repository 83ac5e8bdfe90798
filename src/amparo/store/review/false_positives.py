"""False positives counted against bank entries, and entries disabled pending a curator's
look once their count reaches ``review_fp_disable_after`` (the ``entry_reviews`` table)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from amparo.clock import as_utc
from amparo.review.model import DisabledEntry
from amparo.store.review.rows import bank_t, entry_review_t, entry_t
from amparo.store.uow import Database


def count(conn: Connection, entry_ids: Sequence[int], at: datetime) -> dict[int, int]:
    """Count one false positive against each entry (in the caller's transaction); returns
    entry id -> its count now. An entry deleted with its bank since the match is skipped."""
    counts: dict[int, int] = {}
    for entry_id in sorted(set(entry_ids)):
        exists = conn.execute(select(entry_t.c.id).where(entry_t.c.id == entry_id)).first()
        if exists is None:
            continue
        changed = conn.execute(
            update(entry_review_t)
            .where(entry_review_t.c.entry_id == entry_id)
            .values(
                false_positives=entry_review_t.c.false_positives + 1,
                last_false_positive_at=at,
            )
        ).rowcount
        if not changed:
            conn.execute(
                insert(entry_review_t).values(
                    entry_id=entry_id, false_positives=1, last_false_positive_at=at
                )
            )
        counts[entry_id] = int(
            conn.execute(
                select(entry_review_t.c.false_positives).where(
                    entry_review_t.c.entry_id == entry_id
                )
            ).scalar_one()
        )
    return counts


def uncount(conn: Connection, entry_ids: Sequence[int]) -> list[int]:
    """Take one false positive back from each entry (in the caller's transaction); returns
    the ids whose count went down."""
    uncounted: list[int] = []
    for entry_id in sorted(set(entry_ids)):
        changed = conn.execute(
            update(entry_review_t)
            .where(entry_review_t.c.entry_id == entry_id, entry_review_t.c.false_positives > 0)
            .values(false_positives=entry_review_t.c.false_positives - 1)
        ).rowcount
        if changed:
            uncounted.append(entry_id)
    return uncounted


class FalsePositiveRepository:
    """What reviewers said about bank entries. Every change records its audit entry in the
    same transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def counts(self, entry_ids: Sequence[int]) -> dict[int, int]:
        """Entry id -> false positives counted against it (entries never counted: absent)."""
        with self._db.reading() as conn:
            rows = conn.execute(
                select(entry_review_t.c.entry_id, entry_review_t.c.false_positives).where(
                    entry_review_t.c.entry_id.in_(list(entry_ids))
                )
            ).all()
        return {int(r.entry_id): int(r.false_positives) for r in rows}

    def entries_to_disable(self, entry_ids: Sequence[int], limit: int) -> list[tuple[int, str]]:
        """``(entry id, bank name)`` of the entries with ``limit`` or more false positives
        that are still enabled and not yet marked as disabled pending review."""
        query = (
            select(entry_t.c.id, bank_t.c.name)
            .join(bank_t, bank_t.c.id == entry_t.c.bank_id)
            .join(entry_review_t, entry_review_t.c.entry_id == entry_t.c.id)
            .where(
                entry_t.c.id.in_(list(entry_ids)),
                entry_review_t.c.false_positives >= limit,
                entry_review_t.c.disabled_at.is_(None),
                entry_t.c.removed_at.is_(None),
                entry_t.c.enabled.is_(True),
            )
        )
        with self._db.reading() as conn:
            return [(int(r.id), r.name) for r in conn.execute(query)]

    def mark_disabled(
        self,
        entry_id: int,
        at: datetime | None,
        *,
        actor: str,
        details: dict[str, Any] | None = None,
        reset_count: bool = True,
    ) -> None:
        """Mark an entry as disabled pending a curator's look (``at``), or clear the mark and
        (``reset_count``) the count (``at=None``: a curator re-enabled it, or the false
        positive that disabled it was undone)."""
        with self._db.transaction(refresh=False) as tx:
            values: dict[str, Any] = {"disabled_at": at}
            if at is None and reset_count:
                values["false_positives"] = 0
            tx.conn.execute(
                update(entry_review_t).where(entry_review_t.c.entry_id == entry_id).values(**values)
            )
            bank = tx.conn.execute(
                select(bank_t.c.name)
                .join(entry_t, entry_t.c.bank_id == bank_t.c.id)
                .where(entry_t.c.id == entry_id)
            ).scalar()
            action = "entry.disabled_pending_review" if at else "entry.reenabled_after_review"
            tx.audit(actor, action, str(bank or ""), {"entry": entry_id, **(details or {})})

    def disabled_entries(self) -> list[DisabledEntry]:
        """Entries disabled pending review (not removed since), oldest mark first."""
        query = (
            select(
                entry_t.c.id,
                entry_t.c.signal_type,
                entry_t.c.category,
                entry_t.c.source_id,
                bank_t.c.name,
                entry_review_t.c.false_positives,
                entry_review_t.c.disabled_at,
            )
            .join(entry_t, entry_t.c.id == entry_review_t.c.entry_id)
            .join(bank_t, bank_t.c.id == entry_t.c.bank_id)
            .where(entry_review_t.c.disabled_at.is_not(None), entry_t.c.removed_at.is_(None))
            .order_by(entry_review_t.c.disabled_at, entry_t.c.id)
        )
        with self._db.reading() as conn:
            return [
                DisabledEntry(
                    entry_id=int(r.id),
                    bank=r.name,
                    signal_type=r.signal_type,
                    category=r.category,
                    source_id=r.source_id,
                    false_positives=int(r.false_positives),
                    disabled_at=as_utc(r.disabled_at),
                )
                for r in conn.execute(query)
            ]
