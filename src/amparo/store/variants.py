"""Variants of entries: the PDQ hashes of crops of media added to a bank (migration 0014).

A variant is a row of ``bank_entries`` with ``variant_of`` set to the id of its entry (the
media's own PDQ) and ``variant`` naming it (``crop5-left``...). Its ``signal`` is the crop's
hash, so the PDQ index reads it from the change log like any row; its ``signal_key`` is
``<entry id>:<variant>`` (:func:`amparo.store.models.variant_key`), never a hash, so it never
collides with an entry of the bank and no exact lookup finds it.

Variants are derived data. They are not exported, shared through feeds or exchanges,
counted or listed (queries there carry ``NOT_VARIANT``), cannot be changed on their own
(writes by signal or id skip them), and follow their entry: whenever a write moves an entry's
change-log position, its variants take the entry's state (removed, enabled, paused) at the
same position (:func:`follow_entries`), so indexes drop and pick them up with it. The matcher
also resolves a variant's hit to its entry and checks that entry's state
(:meth:`amparo.matching.Matcher._resolve`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, insert, select, update

from amparo.store.models import EntryRow, signal_key, variant_key

_entry = cast(Table, EntryRow.__table__)


def any_variants(conn: Connection) -> bool:
    """Whether any bank has variant rows: one step of ``ix_entry_variant_of``. (With a bank
    condition SQLite walks the bank's rows instead, a million for a large hash list.)"""
    query = select(_entry.c.variant_of).where(_entry.c.variant_of > 0).limit(1)
    return conn.execute(query).first() is not None


def follow_entries(conn: Connection, bank_id: int, seq: int) -> int:
    """Give the variants of the bank's entries written at change-log position ``seq`` their
    entry's state (removed, enabled, paused) and that position; how many variants changed.
    The changed entries are read by ``ix_entry_bank_seq`` and their variants probed by
    ``ix_entry_variant_of``; without any variant in the database, one indexed read."""
    if not any_variants(conn):
        return 0
    parent = _entry.alias("parent")
    own = parent.c.id == _entry.c.variant_of
    changed = select(parent.c.id).where(
        parent.c.bank_id == bank_id, parent.c.seq == seq, parent.c.variant_of.is_(None)
    )
    result = conn.execute(
        update(_entry)
        .where(_entry.c.variant_of.in_(changed))
        .values(
            removed_at=select(parent.c.removed_at).where(own).scalar_subquery(),
            enabled=select(parent.c.enabled).where(own).scalar_subquery(),
            disabled_until=select(parent.c.disabled_until).where(own).scalar_subquery(),
            seq=seq,
        )
    )
    return int(result.rowcount or 0)


def put_variants(
    conn: Connection,
    bank_id: int,
    signal_type: str,
    signal: str,
    variants: Sequence[tuple[str, str]],
    now: datetime,
    seq: int,
) -> int:
    """Make ``variants`` (``(name, hash)``) the variants of the bank's entry of ``signal``:
    new ones added, changed hashes replaced, others the entry had removed. Each takes the
    entry's state. Rows whose hash and state are already right keep their change-log
    position (adding the same media again changes nothing). Returns how many were added."""
    entry = conn.execute(
        select(_entry.c.id, _entry.c.enabled, _entry.c.removed_at, _entry.c.disabled_until).where(
            _entry.c.signal_type == signal_type,
            _entry.c.signal_key == signal_key(signal),
            _entry.c.bank_id == bank_id,
            _entry.c.variant_of.is_(None),
        )
    ).first()
    if entry is None:
        return 0
    state = {
        "enabled": bool(entry.enabled),
        "removed_at": entry.removed_at,
        "disabled_until": entry.disabled_until,
    }
    existing = {
        r.variant: r
        for r in conn.execute(
            select(
                _entry.c.id,
                _entry.c.variant,
                _entry.c.signal,
                _entry.c.enabled,
                _entry.c.removed_at,
            ).where(_entry.c.variant_of == entry.id)
        )
    }
    added = 0
    wanted = dict(variants)
    for name, value in wanted.items():
        row = existing.get(name)
        if row is None:
            conn.execute(
                insert(_entry).values(
                    bank_id=bank_id,
                    signal_type=signal_type,
                    signal=value,
                    signal_key=variant_key(int(entry.id), name),
                    tags="",
                    added_at=now,
                    seq=seq,
                    variant_of=int(entry.id),
                    variant=name,
                    **state,
                )
            )
            added += 1
        elif (
            row.signal != value
            or bool(row.enabled) != state["enabled"]
            or (row.removed_at is None) != (state["removed_at"] is None)
        ):
            conn.execute(
                update(_entry).where(_entry.c.id == row.id).values(signal=value, seq=seq, **state)
            )
            added += row.removed_at is not None
    stale = [
        int(r.id) for name, r in existing.items() if name not in wanted and r.removed_at is None
    ]
    if stale:
        conn.execute(update(_entry).where(_entry.c.id.in_(stale)).values(removed_at=now, seq=seq))
    return added
