"""Matching: look signals up in every enabled bank, with per-bank settings applied at lookup.

The database is the source of truth. The in-process PDQ index catches up from the store's
change log before each lookup, so a bank change is visible to the next lookup; every hit is
checked against the stored entry (removed, disabled, bank disabled) before it is reported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from amparo.banks.model import BankInfo
from amparo.config import Settings
from amparo.errors import AmparoError, BankNotFoundError
from amparo.index import MAX_RADIUS, SegmentedPdqIndex
from amparo.indexing import (
    PDQ,
    EntryTableSync,
    SignalIndexes,
    keys_of,
    memory_only_now,
    needs_database,
)
from amparo.match_model import MIRROR, MIRROR_INDEX, PATHS, RANK, Hit, Match, Query, QueryResult
from amparo.signals import SignalType, signal_types
from amparo.signals.pdq import DIHEDRAL_NAMES, hexes_to_array
from amparo.signals.vpdq import VpdqSignal, parse_vpdq
from amparo.store import EntryView, Store
from amparo.video_matching import VideoMatcher, video_distance_threshold

_log = logging.getLogger(__name__)

__all__ = [
    "MIRROR",
    "PATHS",
    "Match",
    "Matcher",
    "Query",
    "QueryResult",
    "default_threshold",
]

_WITHIN_THRESHOLD = frozenset(st.name for st in signal_types("hamming"))
"""Signal types whose index hits are checked against their bank's threshold (and dihedral
opt-in); exact hits are at distance 0, video matches are decided by the video matcher."""


def default_threshold(signal_type: type[SignalType], settings: Settings) -> int:
    """The largest distance at which two values of ``signal_type`` match under ``settings``,
    before any bank's own PDQ threshold: 0 for exact types, ``pdq_threshold`` for Hamming
    types, and the share distance of the configured video shares for vPDQ."""
    if signal_type.index_kind == "exact":
        return 0
    if signal_type.index_kind == "video":
        return video_distance_threshold(settings)
    return settings.pdq_threshold


class Matcher:
    """Looks queries up in the banks of one store.

    The PDQ index and digest tables live on disk (``SignalIndexes``) and are opened lazily on
    the first lookup. Before a lookup the matcher catches up with the change log: at once when
    this process wrote something since, otherwise at most every ``index_refresh_seconds`` (so
    other processes' changes show within that time).
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._indexes: SignalIndexes | None = None
        self._lock = threading.RLock()
        self._seen_generation = -1
        self._refreshed_at = 0.0
        self._banks_cache: dict[int, BankInfo] = {}
        # What matching needs of every stored entry (bank, category, enabled...), in memory
        # and caught up with the change log with the indexes: lookups never read entries.
        self._entry_table = EntryTableSync(store, enabled=False)  # on in warm()
        self._refreshing = False  # a refresh is under way (see answers_from_memory)
        self.video = VideoMatcher(store, settings)

    @property
    def indexes(self) -> SignalIndexes:
        if self._indexes is not None:  # no lock: a refresh may hold it, waiting on the database
            return self._indexes
        with self._lock:
            return self._open_indexes(build=True)

    def rebuild_indexes(self) -> SignalIndexes:
        """Build every index afresh from the database: one build, also when none was open yet
        (opening through :attr:`indexes` would build a missing index first, then again)."""
        with self._lock:
            indexes = self._open_indexes(build=False)
            indexes.rebuild()
            return indexes

    def _open_indexes(self, *, build: bool) -> SignalIndexes:
        """The open indexes, opened first (and, with ``build``, built where missing) when
        none are; the caller holds the lock."""
        if self._indexes is None:
            self._indexes = SignalIndexes(self.store, self.settings.index_dir, build=build)
            self._seen_generation = -1
        return self._indexes

    @property
    def index(self) -> SegmentedPdqIndex:
        """The PDQ index (an exact ``PdqIndex``)."""
        return self.indexes.pdq

    @property
    def checkpoint(self) -> int:
        """The change-log position the indexes reflect; -1 before they are opened."""
        return self._indexes.checkpoint if self._indexes is not None else -1

    # -- keeping up with the database -------------------------------------------------------

    def refresh(self, *, force: bool = True) -> None:
        """Bring the indexes and the bank settings up to date with the database.

        ``force=False`` skips the database round trip when this process has written nothing
        since the last refresh and the last one is recent (``index_refresh_seconds``).
        """
        if not force and (self.is_fresh() or (memory_only_now() and self.answers_from_memory())):
            return
        needs_database("the index is due for a refresh")
        with self._lock:
            now = time.monotonic()
            generation = self.store.generation
            if not force and self.is_fresh():
                return
            self._refreshing = True
            try:
                indexes = self.indexes
                before = indexes.checkpoint
                indexes.catch_up()
                changed = self._entry_table.catch_up()
                if changed or indexes.checkpoint != before or generation != self._seen_generation:
                    self._entry_table.forget_views()
                self.video.refresh()
                self._banks_cache = {
                    b.id: b for b in self.store.banks.list(with_counts=False) if b.id is not None
                }
            finally:
                self._refreshing = False
            self._seen_generation, self._refreshed_at = generation, now
            if indexes.needs_compaction():
                indexes.compact_in_background()

    def warm(self, *, entries_in_background: bool = False) -> None:
        """Load the indexes and get a new process ready to answer at full speed: mapped
        pages faulted in, compiled kernels loaded, the entry table read (or being read in
        a thread). Without this the first lookups of each service worker took ~0.7 s."""
        if entries_in_background:
            self._entry_table.load_in_background(before_ready=self._warm_again)
        else:
            self._entry_table.enabled = True
        self.refresh(force=self._entry_table.table is None and not entries_in_background)
        self.indexes.warm()

    def _warm_again(self) -> None:
        """Fault the indexes back in after the entry table was read (in its thread)."""
        indexes = self._indexes  # open by now (warm opened them); never built from here
        if indexes is None:
            return
        try:
            indexes.warm()
        except AmparoError as exc:  # the next lookup reopens them; readiness must not hang
            _log.warning("could not warm the indexes after loading the entry table: %s", exc)

    @property
    def entries_loaded(self) -> bool:
        """Whether what lookups need of each entry is in memory (or this process reads it
        from the database by design: the entry table is off)."""
        return self._entry_table.table is not None or not self._entry_table.enabled

    def answers_from_memory(self) -> bool:
        """Whether a lookup inside :func:`memory_only` (on an event loop) answers now: the
        index is fresh, or a refresh is under way (in the background, perhaps waiting on a
        slow database), nothing this process wrote is pending, and what is in memory is less
        than ``index_max_age_seconds`` old."""
        return self.is_fresh() or (
            self._refreshing
            and self._entry_table.table is not None
            and self.store.generation == self._seen_generation
            and time.monotonic() - self._refreshed_at < self.settings.index_max_age_seconds
        )

    def is_fresh(self) -> bool:
        """Whether a lookup now would use what is in memory, with no database round trip
        (so an async caller may run it on its event loop). Entries come from the entry
        table once it is on (a process that has not turned it on reads them on each hit)."""
        return (
            self._indexes is not None
            and self.entries_loaded
            and self.store.generation == self._seen_generation
            and time.monotonic() - self._refreshed_at < self.settings.index_refresh_seconds
        )

    # -- lookups ----------------------------------------------------------------------------

    def _banks(self, names: Sequence[str] | None) -> dict[int, BankInfo]:
        self.refresh(force=False)
        banks = dict(self._banks_cache)
        if names:
            known = {b.name for b in banks.values()}
            for name in names:
                if name not in known:
                    raise BankNotFoundError(
                        f"no bank named {name!r}", hint="see `amparo bank list`"
                    )
            wanted = set(names)
            banks = {i: b for i, b in banks.items() if b.name in wanted}
        return {i: b for i, b in banks.items() if b.enabled}

    def threshold(self, bank: BankInfo) -> int:
        if bank.pdq_threshold is not None:
            return bank.pdq_threshold
        return self.settings.pdq_threshold

    def wants_dihedral(self, banks: Sequence[str] | None = None) -> bool:
        """Whether any bank a lookup would use asks for dihedral (rotation/flip) matching."""
        return any(b.dihedral for b in self._banks(banks).values())

    def match(
        self, queries: Sequence[Query], banks: Sequence[str] | None = None
    ) -> list[QueryResult]:
        """Look each query up in the chosen (default: all) enabled banks.

        Enabled negative (known-benign) banks are always consulted, whichever banks are
        chosen: a query that matches one has its positive matches moved to ``suppressed``."""
        enabled = self._banks(banks)
        negative = {
            i: b for i, b in self._banks_cache.items() if b.enabled and b.kind == "negative"
        }
        enabled.update(negative)
        results = [QueryResult(matches=[]) for _ in queries]
        if not enabled or not queries:
            return results
        hits: list[list[Hit]] = [[] for _ in queries]
        self._pdq_hits(queries, enabled, results, hits)
        self._digest_hits(queries, hits)
        self._video_matches(queries, enabled, results)
        entries = self._stored_entries({h.entry_id for qh in hits for h in qh})
        parents = {e.variant_of for e in entries.values() if e.variant_of is not None}
        if parents - entries.keys():
            entries.update(self._stored_entries(parents - entries.keys()))
        now = datetime.now(UTC)
        for qi, qhits in enumerate(hits):
            best: dict[tuple[int, str], Match] = {}
            for hit in qhits:
                match = self._resolve(hit, entries, enabled, now)
                if match is None:
                    continue
                key = (match.entry_id, match.signal_type)
                if key in best and (best[key].distance, RANK[best[key].path]) <= (
                    match.distance,
                    RANK[match.path],
                ):
                    continue
                best[key] = match
            results[qi].matches = sorted(
                [*best.values(), *results[qi].matches],
                key=lambda m: (m.distance, m.bank, m.entry_id, m.signal_type),
            )
        if negative:
            names = {b.name for b in negative.values()}
            for result in results:
                _suppress_known_benign(result, names)
        return results

    def _resolve(
        self,
        hit: Hit,
        entries: dict[int, EntryView],
        enabled: dict[int, BankInfo],
        now: datetime,
    ) -> Match | None:
        """The match an index hit stands for, or None when it does not count: its entry (or,
        for a variant, the entry it is a variant of) gone, disabled or paused, its bank not
        chosen, too far for the bank, or a rotation the bank does not match."""
        stored = entries.get(hit.entry_id)
        if stored is None or stored.removed:
            return None
        variant = stored.variant
        if stored.variant_of is not None:
            stored = entries.get(stored.variant_of)
            if stored is None or stored.removed:
                return None
        if not stored.enabled or stored.paused(now):
            return None
        bank = enabled.get(stored.bank_id)
        if bank is None:
            return None
        if hit.signal_type in _WITHIN_THRESHOLD:
            if hit.distance > self.threshold(bank):
                return None
            mirrors = bank.dihedral or self.settings.match_mirrored
            if variant == "mirror" and not mirrors:
                return None
            if hit.transform is not None and not (
                bank.dihedral or (hit.transform == MIRROR and self.settings.match_mirrored)
            ):
                return None
        if hit.transform is not None:
            path = "dihedral"
        elif variant is not None:
            path = "variant"
        elif hit.trimmed:
            path = "trimmed"
        else:
            path = "plain"
        return Match(
            bank=bank.name,
            entry_id=stored.id,
            signal_type=hit.signal_type,
            distance=hit.distance,
            category=stored.category,
            tags=tuple(stored.tags),
            source_id=stored.source_id,
            transform=hit.transform,
            path=path,
            variant=variant,
        )

    def _stored_entries(self, ids: set[int]) -> dict[int, EntryView]:
        """The stored entries behind ``ids``, from the in-memory entry table (see
        :meth:`EntryTableSync.entries`)."""
        return self._entry_table.entries(ids, self._banks_cache, self.checkpoint)

    def _pdq_hits(
        self,
        queries: Sequence[Query],
        enabled: dict[int, BankInfo],
        results: list[QueryResult],
        hits: list[list[Hit]],
    ) -> None:
        radius = max(self.threshold(b) for b in enabled.values())
        dihedral = any(b.dihedral for b in enabled.values())
        mirrored = dihedral or self.settings.match_mirrored
        rows: list[str] = []
        owners: list[tuple[int, str | None, bool]] = []
        for qi, q in enumerate(queries):
            pdq = q.signals.get(PDQ)
            if pdq is None:
                continue
            if q.pdq_quality is not None and q.pdq_quality < self.settings.pdq_min_quality:
                results[qi].pdq_skipped = (
                    f"PDQ quality {q.pdq_quality} is below {self.settings.pdq_min_quality}: "
                    "too little detail for a reliable perceptual match"
                )
                continue
            rows.append(pdq)
            owners.append((qi, None, False))
            if dihedral:
                for name, variant in zip(DIHEDRAL_NAMES[1:], q.pdq_dihedral, strict=False):
                    rows.append(variant)
                    owners.append((qi, name, False))
            mirror = q.pdq_mirror or (
                q.pdq_dihedral[MIRROR_INDEX] if len(q.pdq_dihedral) > MIRROR_INDEX else None
            )
            if mirrored and mirror is not None and not (dihedral and q.pdq_dihedral):
                rows.append(mirror)
                owners.append((qi, MIRROR, False))
            if q.pdq_trimmed is not None:
                rows.append(q.pdq_trimmed)
                owners.append((qi, None, True))
                if mirrored and q.pdq_trimmed_mirror is not None:
                    rows.append(q.pdq_trimmed_mirror)
                    owners.append((qi, MIRROR, True))
        if not rows:
            return
        found = self.index.search(hexes_to_array(rows), min(radius, MAX_RADIUS))
        for row, entry_id, distance in zip(
            found.query.tolist(), found.ids.tolist(), found.distances.tolist(), strict=True
        ):
            qi, transform, trimmed = owners[row]
            hits[qi].append(Hit(int(entry_id), PDQ, int(distance), transform, trimmed))

    def _digest_hits(self, queries: Sequence[Query], hits: list[list[Hit]]) -> None:
        for signal_type, table in self.indexes.digests.items():
            owners = [qi for qi, q in enumerate(queries) if signal_type in q.signals]
            if not owners:
                continue
            keys = keys_of(signal_type, [queries[qi].signals[signal_type] for qi in owners])
            found = table.lookup(keys)
            for row, entry_id in zip(found.query.tolist(), found.ids.tolist(), strict=True):
                hits[owners[row]].append(Hit(int(entry_id), signal_type, 0))

    def _video_matches(
        self, queries: Sequence[Query], enabled: dict[int, BankInfo], results: list[QueryResult]
    ) -> None:
        videos = [
            (qi, parse_vpdq(q.signals[VpdqSignal.name]))
            for qi, q in enumerate(queries)
            if VpdqSignal.name in q.signals
        ]
        if not videos:
            return
        needs_database("video matching reads its entries")
        found = self.video.match([v for _, v in videos], enabled, refresh=False)
        for (qi, _), matched in zip(videos, found, strict=True):
            results[qi].matches.extend(
                Match(
                    bank=r.bank,
                    entry_id=r.entry_id,
                    signal_type=VpdqSignal.name,
                    distance=r.distance,
                    category=r.category,
                    tags=tuple(r.tags),
                    source_id=r.source_id,
                    video=r.detail,
                )
                for r in matched
            )


def _suppress_known_benign(result: QueryResult, negative_banks: set[str]) -> None:
    """Known-benign content is never a find: a query that matched an entry of a negative bank
    keeps its positive matches only as ``suppressed``."""
    benign = [m for m in result.matches if m.bank in negative_banks]
    if benign:
        result.benign = benign
        result.suppressed = [m for m in result.matches if m.bank not in negative_banks]
        result.matches = []
