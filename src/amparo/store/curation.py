"""The reads behind the curator console (``/console``): entry search, the review queue's
age, reviewers' reveals per day and finds per bank per day.

Read-only, bounded queries over tables other parts write; nothing is stored here. Matches per
bank per day come from ``match_volume``: every lookup that matched a bank (API, scans, the
CLI, the hotline, retroactive matching; one per lookup per bank, by source) is counted in
memory by each process (:mod:`amparo.tally`) and added there now and then, counts only.
Content sent for review comes from the review items rules opened (``case_items``): each
content once per bank on the day it was first seen.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import cast

from sqlalchemy import Table, func, or_, select

from amparo.banks.model import EntryView
from amparo.clock import as_utc
from amparo.store.entry_rows import ENTRY_WITH_BANK, NOT_VARIANT, entry_view
from amparo.store.match_volume import MatchVolumeRepository
from amparo.store.models import EntryRow, signal_key
from amparo.store.models_hotline import HotlineRevealRow
from amparo.store.review.rows import case_t, item_t, reveal_t
from amparo.store.uow import Database

_entry = cast(Table, EntryRow.__table__)
_hotline_reveal = cast(Table, HotlineRevealRow.__table__)
MAX_ROWS = 100_000
"""At most this many rows are read for one chart or table (a console page stays quick)."""


class CurationReads:
    """Reads for the curator console."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def search_entries(self, text: str, *, limit: int = 50) -> list[EntryView]:
        """Entries (not removed; disabled ones included) whose id, source id or signal is
        ``text`` exactly; each part is served by an index (``ix_entry_source_id`` since
        migration 0013)."""
        conditions = [_entry.c.source_id == text, _entry.c.signal_key == signal_key(text)]
        lowered = text.lower()
        if lowered != text:
            conditions.append(_entry.c.signal_key == signal_key(lowered))
        if text.isdigit() and len(text) < 19:
            conditions.append(_entry.c.id == int(text))
        query = (
            ENTRY_WITH_BANK.where(_entry.c.removed_at.is_(None), NOT_VARIANT, or_(*conditions))
            .order_by(_entry.c.id)
            .limit(limit)
        )
        with self._db.reading() as conn:
            return [entry_view(r) for r in conn.execute(query)]

    def oldest_opened(self, statuses: Sequence[str]) -> datetime | None:
        """When the longest-waiting case of ``statuses`` was opened (None: no such case)."""
        query = select(func.min(case_t.c.opened_at)).where(case_t.c.status.in_(list(statuses)))
        with self._db.reading() as conn:
            value = conn.execute(query).scalar()
        return as_utc(value) if value is not None else None

    def reveals_since(self, since: datetime) -> list[tuple[str, datetime, str, int]]:
        """(reviewer, time, ``case`` or ``hotline``, item id) of every reveal since ``since``."""
        out: list[tuple[str, datetime, str, int]] = []
        with self._db.reading() as conn:
            for kind, table in (("case", reveal_t), ("hotline", _hotline_reveal)):
                rows = conn.execute(
                    select(table.c.reviewer, table.c.at, table.c.item_id)
                    .where(table.c.at >= since)
                    .order_by(table.c.at)
                    .limit(MAX_ROWS)
                )
                out.extend((r.reviewer, as_utc(r.at), kind, int(r.item_id)) for r in rows)
        return out

    def volume_since(self, first: date) -> list[tuple[date, str, str, int]]:
        """(day, bank, source, matches) of the match volume from day ``first`` on."""
        return MatchVolumeRepository(self._db).since(first)

    def finds_since(self, since: datetime) -> list[tuple[datetime, list[str]]]:
        """(first seen, banks it matched) of every review item first seen since ``since``."""
        query = (
            select(item_t.c.first_seen, item_t.c.matches)
            .where(item_t.c.first_seen >= since)
            .order_by(item_t.c.first_seen)
            .limit(MAX_ROWS)
        )
        out: list[tuple[datetime, list[str]]] = []
        with self._db.reading() as conn:
            for row in conn.execute(query):
                try:
                    matches = json.loads(row.matches or "[]")
                except ValueError:
                    matches = []
                banks = sorted(
                    {str(m["bank"]) for m in matches if isinstance(m, dict) and m.get("bank")}
                )
                out.append((as_utc(row.first_seen), banks))
        return out
