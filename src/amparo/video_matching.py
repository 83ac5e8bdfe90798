"""Video matching against the banks of one store: a shared PDQ index of every active vPDQ
entry's frames, kept up to date from the store's change log, and per-video results checked
against the stored entries (removed, disabled, paused entries and disabled banks dropped).

``Matcher`` holds one ``VideoMatcher`` and hands it the queries that carry a ``vpdq``
signal; ``video_entries`` is what adding a video to a bank stores.

Frames are looked up with each bank's PDQ threshold (the configured default where a bank sets
none); the share rule (``video_query_share``, ``video_bank_share``, ``video_clip``,
``video_bank_coverage_seconds``) is installation-wide for now. A match's ``distance`` is
``100 - floor(100 * min(query share, bank share))`` (``VpdqSignal.distance``): 0 when every
frame of each video matches the other.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from amparo.banks.model import BankInfo, EntryRecord
from amparo.config import MAX_PDQ_THRESHOLD, Settings
from amparo.errors import InvalidSignalError
from amparo.hashing import MediaHashes, hash_video_media, video_limits
from amparo.index import BruteForcePdqIndex, IndexHits, PdqIndex
from amparo.index.video import matches_from_hits
from amparo.signals.vpdq import VpdqFrames, parse_vpdq, share_distance
from amparo.signals.vpdq_compare import TimeRange, VideoMatch, VideoMatchOptions, frame_rows
from amparo.store import EntryView, Store

if TYPE_CHECKING:
    from amparo.media.video import VideoSource

log = logging.getLogger("amparo")

SIGNAL_TYPE = "vpdq"


@dataclass(frozen=True)
class VideoMatchDetail:
    """How a query video matched a bank video: shares of frames and where in each."""

    query_share: float
    bank_share: float
    query_ranges: tuple[TimeRange, ...]
    """Seconds of the query that matched the bank video."""
    bank_ranges: tuple[TimeRange, ...]
    """Seconds of the bank video the query covers."""
    query_frames: int
    bank_frames: int

    def to_json(self) -> dict[str, object]:
        return {
            "query_share": round(self.query_share, 4),
            "bank_share": round(self.bank_share, 4),
            "query_ranges": [[r.start, r.end] for r in self.query_ranges],
            "bank_ranges": [[r.start, r.end] for r in self.bank_ranges],
            "query_frames": self.query_frames,
            "bank_frames": self.bank_frames,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VideoMatchDetail:
        """The inverse of :meth:`to_json` (as stored with a case's matches)."""
        return cls(
            query_share=float(data["query_share"]),
            bank_share=float(data["bank_share"]),
            query_ranges=tuple(TimeRange(float(a), float(b)) for a, b in data["query_ranges"]),
            bank_ranges=tuple(TimeRange(float(a), float(b)) for a, b in data["bank_ranges"]),
            query_frames=int(data["query_frames"]),
            bank_frames=int(data["bank_frames"]),
        )


@dataclass(frozen=True)
class VideoMatchResult:
    """One bank video (a vpdq entry) matched by one query video."""

    bank: str
    entry_id: int
    distance: int
    """``100 - floor(100 * min(query share, bank share))``."""
    detail: VideoMatchDetail
    category: str | None = None
    tags: tuple[str, ...] = ()
    source_id: str | None = None
    signal_type: str = SIGNAL_TYPE


def video_distance_threshold(settings: Settings) -> int:
    """The largest share distance that is a match under the configured shares (20 for
    0.8/0.8; clip mode: the query share alone)."""
    if settings.video_clip:
        return share_distance(settings.video_query_share, 1.0)
    return share_distance(settings.video_query_share, settings.video_bank_share)


class VideoMatcher:
    """Finds bank videos matching query videos. Keeps its own in-memory PDQ index of every
    active vpdq entry's frames (and ``frame id -> (entry id, slot)``); the database is the
    final word on what may match."""

    def __init__(self, store: Store, settings: Settings, index: PdqIndex | None = None) -> None:
        self.store = store
        self.settings = settings
        self.index: PdqIndex = index if index is not None else BruteForcePdqIndex()
        self.checkpoint = -1
        self._lock = threading.Lock()
        self._frames: dict[int, tuple[int, int]] = {}
        """Frame row id -> (entry id, slot)."""
        self._rows: dict[int, NDArray[np.int64]] = {}
        """Entry id -> its frame row ids."""
        self._videos: dict[int, VpdqFrames] = {}
        self._next_row = 0

    def __len__(self) -> int:
        """Number of vpdq entries (videos) indexed."""
        return len(self._videos)

    @property
    def frame_count(self) -> int:
        return len(self._frames)

    def options(self, distance: int | None = None) -> VideoMatchOptions:
        s = self.settings
        return VideoMatchOptions(
            distance=s.pdq_threshold if distance is None else distance,
            min_quality=s.pdq_min_quality,
            query_share=s.video_query_share,
            bank_share=s.video_bank_share,
            clip=s.video_clip,
            bank_coverage_seconds=s.video_bank_coverage_seconds,
            query_sample_fps=s.video_sample_fps,
        )

    # -- keeping up with the database -------------------------------------------------------

    def refresh(self) -> None:
        """Bring the frame index up to date with the store's change log."""
        with self._lock:
            if self.checkpoint < 0:
                seq = self.store.changes.current_seq()
                for batch in self.store.changes.iter_active_signals(SIGNAL_TYPE):
                    self._add(batch)
                self.checkpoint = seq
            # Changes committed while loading are replayed (adds replace, removes are
            # idempotent).
            changes = self.store.changes.since(self.checkpoint, [SIGNAL_TYPE])
            self._remove(i for i, _ in changes.removals)
            self._add((i, s) for i, _, s in changes.upserts)
            self.checkpoint = changes.seq

    def _add(self, entries: Iterable[tuple[int, str]]) -> None:
        ids: list[NDArray[np.int64]] = []
        hashes: list[NDArray[np.uint8]] = []
        for entry_id, signal in entries:
            self._remove([entry_id])
            try:
                video = parse_vpdq(signal)
            except InvalidSignalError as exc:
                log.warning("vpdq entry %d cannot be read, not matched: %s", entry_id, exc)
                continue
            rows, slots = frame_rows(video, self.settings.pdq_min_quality)
            if not len(slots):
                continue  # no usable frame: nothing could ever match it
            row_ids = np.arange(self._next_row, self._next_row + len(slots), dtype=np.int64)
            self._next_row += len(slots)
            self._frames.update(
                zip(row_ids.tolist(), ((entry_id, int(s)) for s in slots), strict=True)
            )
            self._rows[entry_id] = row_ids
            self._videos[entry_id] = video
            ids.append(row_ids)
            hashes.append(rows)
        if ids:
            self.index.add(np.concatenate(ids), np.concatenate(hashes))

    def _remove(self, entry_ids: Iterable[int]) -> None:
        gone: list[NDArray[np.int64]] = []
        for entry_id in entry_ids:
            rows = self._rows.pop(entry_id, None)
            if rows is None:
                continue
            self._videos.pop(entry_id, None)
            for row in rows.tolist():
                self._frames.pop(row, None)
            gone.append(rows)
        if gone:
            self.index.remove(np.concatenate(gone))

    # -- lookups ----------------------------------------------------------------------------

    def threshold(self, bank: BankInfo) -> int:
        if bank.pdq_threshold is not None:
            return bank.pdq_threshold
        return self.settings.pdq_threshold

    def match(
        self,
        queries: Sequence[VpdqFrames],
        banks_enabled: dict[int, BankInfo],
        *,
        refresh: bool = True,
    ) -> list[list[VideoMatchResult]]:
        """Bank videos matched by each query, best first, from the given enabled banks
        (bank id -> bank). Entries that are removed, disabled or paused, and banks not in
        ``banks_enabled``, are dropped. ``refresh=False`` skips catching up with the change
        log first (for a caller that refreshes on its own schedule)."""
        if refresh or self.checkpoint < 0:
            self.refresh()
        results: list[list[VideoMatchResult]] = [[] for _ in queries]
        if not queries or not banks_enabled:
            return results
        radius = min(max(self.threshold(b) for b in banks_enabled.values()), MAX_PDQ_THRESHOLD)
        all_rows: list[NDArray[np.uint8]] = []
        query_slots: list[NDArray[np.int64]] = []
        for query in queries:
            rows, slots = frame_rows(query, self.settings.pdq_min_quality)
            all_rows.append(rows)
            query_slots.append(slots)
        offsets = np.cumsum([0, *(len(s) for s in query_slots)])
        if offsets[-1] == 0:
            return results
        # Searches wait for a refresh in progress: an index is not safe to read mid-update.
        with self._lock:
            found = self.index.search(np.concatenate(all_rows), radius)
            frames = {int(r): self._frames[int(r)] for r in np.unique(found.ids).tolist()}
            videos = {e: self._videos[e] for e, _ in frames.values()}
        entries = self.store.banks.get_entries(videos) if videos else {}
        now = datetime.now(UTC)
        usable: dict[int, tuple[EntryView, BankInfo]] = {}
        for entry_id, stored in entries.items():
            bank = banks_enabled.get(stored.bank_id)
            if bank is None or stored.removed or not stored.enabled or stored.paused(now):
                continue
            if stored.signal_type != SIGNAL_TYPE:
                continue
            usable[entry_id] = (stored, bank)
        by_threshold: dict[int, set[int]] = {}
        for entry_id, (_, bank) in usable.items():
            by_threshold.setdefault(self.threshold(bank), set()).add(entry_id)
        # The frame map and video set of each threshold group do not depend on the query.
        groups = [
            (
                threshold,
                {r: t for r, t in frames.items() if t[0] in entry_ids},
                {e: videos[e] for e in entry_ids},
            )
            for threshold, entry_ids in by_threshold.items()
        ]
        for qi, query in enumerate(queries):
            start, stop = int(offsets[qi]), int(offsets[qi + 1])
            hits = _hits_for(found, start, stop)
            if not len(hits):
                continue
            for threshold, mapping, group_videos in groups:
                for video in matches_from_hits(
                    query, query_slots[qi], hits, mapping, group_videos, self.options(threshold)
                ):
                    if not video.is_match:
                        continue
                    stored, bank = usable[video.video_id]
                    results[qi].append(_result(video, stored, bank))
            results[qi].sort(key=lambda r: (r.distance, r.bank, r.entry_id))
        return results


def _hits_for(found: IndexHits, start: int, stop: int) -> IndexHits:
    keep = (found.query >= start) & (found.query < stop)
    return IndexHits(found.query[keep] - start, found.ids[keep], found.distances[keep])


def _result(video: VideoMatch, stored: EntryView, bank: BankInfo) -> VideoMatchResult:
    return VideoMatchResult(
        bank=bank.name,
        entry_id=video.video_id,
        distance=share_distance(video.query_share, video.bank_share),
        detail=VideoMatchDetail(
            query_share=video.query_share,
            bank_share=video.bank_share,
            query_ranges=video.query_ranges,
            bank_ranges=video.bank_ranges,
            query_frames=video.query_slots,
            bank_frames=video.bank_slots,
        ),
        category=stored.category,
        tags=tuple(stored.tags),
        source_id=stored.source_id,
    )


# -- adding videos to banks ---------------------------------------------------------------


def bank_sample_fps(settings: Settings) -> float:
    """The rate bank videos are sampled at: ``video_bank_sample_fps``, raised to a whole
    multiple of ``video_sample_fps`` where it is not one (and never below it). Sampling by
    timestamp, a multiple keeps every frame a query's sampling picks, so a byte-identical
    copy compares the very same frames; the extra frames in between line up trimmed copies."""
    query, bank = settings.video_sample_fps, settings.video_bank_sample_fps
    multiple = max(1, math.ceil(bank / query - 1e-9))
    return bank if abs(multiple * query - bank) <= 1e-9 * bank else multiple * query


def hash_bank_video(source: VideoSource, settings: Settings) -> MediaHashes:
    """Hash a video for a bank: vPDQ at :func:`bank_sample_fps` (denser than queries, so a
    copy trimmed at any offset still lines up), under the video limits."""
    return hash_video_media(
        source, sample_fps=bank_sample_fps(settings), limits=video_limits(settings)
    )


def video_entries(
    source: VideoSource,
    settings: Settings,
    *,
    category: str | None = None,
    tags: Sequence[str] = (),
    source_id: str | None = None,
    note: str | None = None,
    not_added: dict[str, str] | None = None,
) -> tuple[MediaHashes, list[EntryRecord]]:
    """The bank entries of one video: its vPDQ (compact form, hashed at
    ``video_bank_sample_fps``) when it decodes and has a usable frame, its MD5 and SHA-256.
    The hashes come back too (``error`` says why there is no vPDQ); when the vPDQ is left
    out, ``not_added["vpdq"]`` (when a dict is given) says why."""
    hashes = hash_bank_video(source, settings)
    signals = [("md5", hashes.md5), ("sha256", hashes.sha256)]
    reason: str | None = None
    if hashes.vpdq is not None:
        frames = parse_vpdq(hashes.vpdq)
        if len(frame_rows(frames, settings.pdq_min_quality)[1]):
            signals.insert(0, (SIGNAL_TYPE, hashes.vpdq))
        else:
            reason = f"no frame reaches pdq_min_quality {settings.pdq_min_quality}"
            log.warning("%s; adding the video's digests only", reason)
    else:
        reason = f"video not decoded: {hashes.error or 'no frame'}"
        log.warning("%s; adding its digests only", reason)
    if reason is not None and not_added is not None:
        not_added[SIGNAL_TYPE] = reason
    records = [
        EntryRecord(t, v, category=category, tags=list(tags), source_id=source_id, note=note)
        for t, v in signals
    ]
    return hashes, records
