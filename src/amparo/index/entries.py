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

import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

_KNOWN = 1
_ENABLED = 2
_REMOVED = 4
_TAG_SEP = "\x1f"
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
        with their bank), and move the checkpoint. Drops go first: a row read with them is
        the newer news (SQLite may give a deleted bank's last ids to new entries)."""
        with self._lock:
            self._apply(rows, dropped, checkpoint)

    def _apply(
        self, rows: Sequence[EntryMeta], dropped: Iterable[int], checkpoint: int | None
    ) -> None:
        for i in dropped:
            if 0 < i < len(self._flags) and self._flags[i] & _KNOWN:
                self._flags[i] = 0
                self._count -= 1
                self._paused.pop(i, None)
        if rows:
            self._grow(max(r.id for r in rows))
            put = self.strings.put
            ids = np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows))
            known = self._flags[ids] & _KNOWN
            self._count += int(len(ids) - np.count_nonzero(known))
            self._bank[ids] = np.fromiter((r.bank_id for r in rows), np.int32, len(rows))
            self._flags[ids] = np.fromiter(
                (
                    _KNOWN | (_ENABLED if r.enabled else 0) | (_REMOVED if r.removed else 0)
                    for r in rows
                ),
                np.uint8,
                len(rows),
            )
            self._category[ids] = np.fromiter((put(r.category) for r in rows), np.uint32)
            self._tags[ids] = np.fromiter(
                (put(_TAG_SEP.join(r.tags)) if r.tags else 0 for r in rows), np.uint32
            )
            self._source[ids] = np.fromiter((put(r.source_id) for r in rows), np.uint32)
            self._set_variants(ids, rows)
            for r in rows:
                if r.disabled_until is not None:
                    self._paused[r.id] = r.disabled_until
                else:
                    self._paused.pop(r.id, None)
        if checkpoint is not None:
            self.checkpoint = checkpoint

    def _set_variants(self, ids: NDArray[np.int64], rows: Sequence[EntryMeta]) -> None:
        if self._variant_of is None or self._variant is None:
            if all(r.variant_of is None and r.variant is None for r in rows):
                return
            self._variant_of = np.zeros(len(self._flags), dtype=np.int64)
            self._variant = np.zeros(len(self._flags), dtype=np.uint32)
        self._variant_of[ids] = np.fromiter((r.variant_of or 0 for r in rows), np.int64)
        self._variant[ids] = np.fromiter((self.strings.put(r.variant) for r in rows), np.uint32)

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
        tags = s(int(self._tags[entry_id]))
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
            tags=tuple(tags.split(_TAG_SEP)) if tags else (),
            source_id=s(int(self._source[entry_id])),
            variant_of=variant_of,
            variant=variant,
        )

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
