"""The entry table: what a match needs to know of each stored entry, held in memory.

A matcher checks every index hit against its stored entry (its bank, whether it is enabled,
removed or paused) and reports the entry's category, tags and source id. Reading those from
the database on each hit put a database round trip on the lookup path (and, once the hits
outgrew a cache, on nearly every lookup). The table keeps them in compact arrays indexed by
entry id, caught up from the store's change log beside the signal indexes, so a lookup reads
memory only.

Per entry slot: bank id (4 bytes), flags (1), category, tag set and source id as positions in
a string table (4 each): 17 bytes, plus the unique strings. Variant columns (the entry a
variant belongs to, and which variant it is: 12 bytes) are allocated only once a variant is
seen; pause times (rare) are held in a dict. Entry ids are dense from 1 (database identity
columns), so a slot's position is its id.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from amparo.clock import as_utc

_KNOWN = 1
_ENABLED = 2
_REMOVED = 4
RawEntry = tuple[Any, ...]
"""One entry as the database reads it, columns in this order: id, bank id, enabled, removed
(bool), disabled until (a datetime, naive is UTC, or None), category, tags (the stored JSON
text: a list of strings; empty or None for none), source id, and optionally variant of and
variant. What :meth:`EntryTable.apply_raw` takes: a million rows load in a few seconds."""
_GROWTH = 1.5


class EntryMeta(NamedTuple):
    """One entry as matching sees it."""

    id: int
    bank_id: int
    enabled: bool
    removed: bool
    disabled_until: datetime | None = None
    category: str | None = None
    tags: tuple[str, ...] = ()
    source_id: str | None = None
    variant_of: int | None = None
    variant: str | None = None


class StringTable:
    """Each distinct string once; position 0 stands for None (and for the empty tag set)."""

    def __init__(self) -> None:
        self._strings: list[str | None] = [None]
        self._positions: dict[str, int] = {}

    def put(self, value: str | None) -> int:
        if value is None:
            return 0
        pos = self._positions.get(value)
        if pos is None:
            pos = self._positions[value] = len(self._strings)
            self._strings.append(value)
        return pos

    def get(self, pos: int) -> str | None:
        return self._strings[pos]

    def __len__(self) -> int:
        return len(self._strings) - 1

    def nbytes(self) -> int:
        """About what the strings hold (their characters, not Python's object overhead)."""
        return sum(len(s) for s in self._positions)


class EntryTable:
    """Entry metadata by id, with the change-log position it reflects (``checkpoint``).
    Safe to read from lookup threads while one thread applies changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.checkpoint = -1
        self.strings = StringTable()
        self._bank: NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self._flags: NDArray[np.uint8] = np.zeros(0, dtype=np.uint8)
        self._category: NDArray[np.uint32] = np.zeros(0, dtype=np.uint32)
        self._tags: NDArray[np.uint32] = np.zeros(0, dtype=np.uint32)
        self._source: NDArray[np.uint32] = np.zeros(0, dtype=np.uint32)
        self._variant_of: NDArray[np.int64] | None = None
        self._variant: NDArray[np.uint32] | None = None
        self._paused: dict[int, datetime] = {}
        self._tag_sets: dict[int, tuple[str, ...]] = {}
        self._count = 0

    # -- writing ----------------------------------------------------------------------------

    def _grow(self, top: int) -> None:
        size = len(self._flags)
        if top < size:
            return
        new = max(top + 1, int(size * _GROWTH), 1024)

        def grown(a: NDArray[np.generic]) -> NDArray[np.generic]:
            out = np.zeros(new, dtype=a.dtype)
            out[: len(a)] = a
            return out

        self._bank = grown(self._bank)  # type: ignore[assignment]
        self._flags = grown(self._flags)  # type: ignore[assignment]
        self._category = grown(self._category)  # type: ignore[assignment]
        self._tags = grown(self._tags)  # type: ignore[assignment]
        self._source = grown(self._source)  # type: ignore[assignment]
        if self._variant_of is not None and self._variant is not None:
            self._variant_of = grown(self._variant_of)  # type: ignore[assignment]
            self._variant = grown(self._variant)  # type: ignore[assignment]

    def apply(
        self,
        rows: Sequence[EntryMeta] = (),
        dropped: Iterable[int] = (),
        *,
        checkpoint: int | None = None,
    ) -> None:
        """Set ``rows`` (new or changed entries), forget ``dropped`` ids (entries deleted
        with their bank), and move the checkpoint."""
        raw = [
            (
                *r[:6],
                json.dumps(list(r.tags)) if r.tags else None,
                r.source_id,
                r.variant_of,
                r.variant,
            )
            for r in rows
        ]
        self.apply_raw(raw, dropped, checkpoint=checkpoint)

    def apply_raw(
        self,
        rows: Sequence[RawEntry] = (),
        dropped: Iterable[int] = (),
        *,
        checkpoint: int | None = None,
    ) -> None:
        """:meth:`apply` with rows as the database reads them (:data:`RawEntry`). Drops go
        first: a row read with them is the newer news (SQLite may give a deleted bank's last
        ids to new entries)."""
        with self._lock:
            for i in dropped:
                if 0 < i < len(self._flags) and self._flags[i] & _KNOWN:
                    self._flags[i] = 0
                    self._count -= 1
                    self._paused.pop(i, None)
            if rows:
                self._set(rows)
            if checkpoint is not None:
                self.checkpoint = checkpoint

    def _set(self, rows: Sequence[RawEntry]) -> None:
        n = len(rows)
        cols = list(zip(*rows, strict=True))
        ids = np.asarray(cols[0], dtype=np.int64)
        self._grow(int(ids.max()))
        put = self.strings.put
        known = self._flags[ids] & _KNOWN
        self._count += int(n - np.count_nonzero(known))
        self._bank[ids] = np.asarray(cols[1], dtype=np.int32)
        enabled = np.asarray(cols[2], dtype=bool)
        removed = np.asarray(cols[3], dtype=bool)
        self._flags[ids] = _KNOWN | (enabled * _ENABLED) | (removed * _REMOVED)
        self._category[ids] = np.fromiter(map(put, cols[5]), np.uint32, n)
        self._tags[ids] = np.fromiter(
            (put(t) if t and t != "[]" else 0 for t in cols[6]), np.uint32, n
        )
        self._source[ids] = np.fromiter(map(put, cols[7]), np.uint32, n)
        if len(cols) > 9:
            self._set_variants(ids, cols[8], cols[9])
        if self._paused:
            for i in cols[0]:
                self._paused.pop(i, None)
        for i, until in zip(cols[0], cols[4], strict=True):
            if until is not None:
                self._paused[int(i)] = as_utc(until)

    def _set_variants(
        self, ids: NDArray[np.int64], variant_of: Sequence[Any], variant: Sequence[Any]
    ) -> None:
        if self._variant_of is None or self._variant is None:
            if all(v is None for v in variant_of) and all(v is None for v in variant):
                return
            self._variant_of = np.zeros(len(self._flags), dtype=np.int64)
            self._variant = np.zeros(len(self._flags), dtype=np.uint32)
        self._variant_of[ids] = np.fromiter((v or 0 for v in variant_of), np.int64, len(ids))
        self._variant[ids] = np.fromiter(map(self.strings.put, variant), np.uint32, len(ids))

    # -- reading ----------------------------------------------------------------------------

    def get(self, entry_id: int) -> EntryMeta | None:
        """The entry, or None when the table does not know it."""
        with self._lock:
            return self._get(entry_id)

    def _get(self, entry_id: int) -> EntryMeta | None:
        if not 0 < entry_id < len(self._flags):
            return None
        flags = int(self._flags[entry_id])
        if not flags & _KNOWN:
            return None
        s = self.strings.get
        variant_of: int | None = None
        variant: str | None = None
        if self._variant_of is not None and self._variant is not None:
            variant_of = int(self._variant_of[entry_id]) or None
            variant = s(int(self._variant[entry_id]))
        return EntryMeta(
            id=entry_id,
            bank_id=int(self._bank[entry_id]),
            enabled=bool(flags & _ENABLED),
            removed=bool(flags & _REMOVED),
            disabled_until=self._paused.get(entry_id),
            category=s(int(self._category[entry_id])),
            tags=self._parsed_tags(int(self._tags[entry_id])),
            source_id=s(int(self._source[entry_id])),
            variant_of=variant_of,
            variant=variant,
        )

    def _parsed_tags(self, pos: int) -> tuple[str, ...]:
        if not pos:
            return ()
        tags = self._tag_sets.get(pos)
        if tags is None:
            raw = self.strings.get(pos)
            tags = self._tag_sets[pos] = tuple(json.loads(raw)) if raw else ()
        return tags

    def __len__(self) -> int:
        """How many entries the table knows."""
        return self._count

    def nbytes(self) -> int:
        """Memory held: the arrays, the strings' characters and the pause times."""
        arrays: list[NDArray[Any]] = [
            self._bank,
            self._flags,
            self._category,
            self._tags,
            self._source,
        ]
        if self._variant_of is not None and self._variant is not None:
            arrays += [self._variant_of, self._variant]
        return sum(a.nbytes for a in arrays) + self.strings.nbytes() + 64 * len(self._paused)
