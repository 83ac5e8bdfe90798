"""Entry rows as the repositories read them: the statements built once and the conversion of
a row to an :class:`~amparo.banks.model.EntryView`."""

from __future__ import annotations

import json
from typing import Any, cast

from sqlalchemy import Table, bindparam, select

from amparo.banks.model import EntryView
from amparo.clock import as_utc
from amparo.store.models import BankRow, EntryRow

_bank = cast(Table, BankRow.__table__)
_entry = cast(Table, EntryRow.__table__)
# Statements built once: a matcher looks entries up by id on every hit it has not cached,
# and building, coercing and cache-keying a new select each time cost more than running it.
ENTRY_WITH_BANK = select(_entry, _bank.c.name.label("bank_name")).join(
    _bank, _bank.c.id == _entry.c.bank_id
)
ENTRY_BY_ID = ENTRY_WITH_BANK.where(_entry.c.id == bindparam("id"))
ENTRIES_BY_IDS = ENTRY_WITH_BANK.where(_entry.c.id.in_(bindparam("ids", expanding=True)))
NOT_VARIANT = _entry.c.variant_of.is_(None)
"""Entries proper, not the variants stored with some (derived data: never exported, shared,
counted or listed; see :mod:`amparo.store.variants`)."""


def tags_of(raw: str) -> list[str]:
    return list(json.loads(raw)) if raw else []


def json_object(raw: str | None) -> dict[str, Any] | None:
    """A stored JSON object (an entry's provenance); None when absent or unreadable."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def entry_view(r: Any) -> EntryView:
    return EntryView(
        id=int(r.id),
        bank_id=int(r.bank_id),
        bank_name=r.bank_name,
        signal_type=r.signal_type,
        signal=r.signal,
        category=r.category,
        tags=tags_of(r.tags),
        source_id=r.source_id,
        note=r.note,
        enabled=bool(r.enabled),
        removed=r.removed_at is not None,
        added_at=r.added_at,
        disabled_until=as_utc(r.disabled_until),
        provenance=json_object(r.provenance),
        variant_of=int(r.variant_of) if r.variant_of is not None else None,
        variant=r.variant,
    )
