"""vPDQ matching through a shared PDQ index: turn the index's hits for a query video's frames
into per-video results (the comparison itself is ``amparo.signals.vpdq_compare``).

For many bank videos, store each usable variant of each bank slot as a PDQ entry in the
shared index (``bank_entries``, built on ``frame_rows``), keep ``entry id -> (video id,
slot)``, search all query rows at once and call ``matches_from_hits``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from amparo.index.base import IndexHits
from amparo.signals.pdq import DEFAULT_MIN_QUALITY, hexes_to_array
from amparo.signals.vpdq_compare import (
    DEFAULT_OPTIONS,
    VideoMatch,
    VideoMatchOptions,
    frame_rows,
    video_result,
)
from amparo.signals.vpdq_frames import VpdqFrames


def matches_from_hits(
    query: VpdqFrames,
    query_slots: NDArray[np.int64],
    hits: IndexHits,
    frame_entries: Mapping[int, tuple[int, int]],
    bank_videos: Mapping[int, VpdqFrames],
    options: VideoMatchOptions = DEFAULT_OPTIONS,
) -> list[VideoMatch]:
    """Per-video results from one index search over all of a query's frame rows.

    ``query_slots``: the slot of each searched row (from ``frame_rows(query)``); ``hits``:
    the index's answer for those rows (radius >= ``options.distance``); ``frame_entries``:
    entry id -> (video id, bank slot) for frame entries (hits on other entries are ignored);
    ``bank_videos``: the frames of each video that was hit. Results are sorted by
    descending ``min(query_share, bank_share)``, matches first.
    """
    per_video: dict[int, tuple[set[int], set[int]]] = {}
    keep = hits.distances <= options.distance
    for row, entry in zip(hits.query[keep].tolist(), hits.ids[keep].tolist(), strict=True):
        target = frame_entries.get(entry)
        if target is None:
            continue
        video_id, bank_slot = target
        q_set, b_set = per_video.setdefault(video_id, (set(), set()))
        q_set.add(int(query_slots[row]))
        b_set.add(bank_slot)
    results: list[VideoMatch] = []
    for video_id, (q_set, b_set) in per_video.items():
        bank = bank_videos[video_id]
        q_matched = np.zeros(len(query.frames), dtype=bool)
        b_matched = np.zeros(len(bank.frames), dtype=bool)
        q_matched[list(q_set)] = True
        b_matched[[s for s in b_set if s < len(bank.frames)]] = True
        results.append(video_result(video_id, query, bank, q_matched, b_matched, options))
    results.sort(key=lambda m: (not m.is_match, -min(m.query_share, m.bank_share), m.video_id))
    return results


def bank_entries(
    videos: Mapping[int, VpdqFrames],
    first_entry_id: int = 0,
    min_quality: int = DEFAULT_MIN_QUALITY,
) -> tuple[NDArray[np.int64], NDArray[np.uint8], dict[int, tuple[int, int]]]:
    """Frame entries for a shared PDQ index: ids (consecutive from ``first_entry_id``), packed
    hashes, and the ``entry id -> (video id, slot)`` map ``matches_from_hits`` needs."""
    ids: list[NDArray[np.int64]] = []
    rows: list[NDArray[np.uint8]] = []
    mapping: dict[int, tuple[int, int]] = {}
    next_id = first_entry_id
    for video_id, frames in videos.items():
        hashes, slots = frame_rows(frames, min_quality)
        entry_ids = np.arange(next_id, next_id + len(slots), dtype=np.int64)
        mapping.update(zip(entry_ids.tolist(), ((video_id, int(s)) for s in slots), strict=True))
        ids.append(entry_ids)
        rows.append(hashes)
        next_id += len(slots)
    if not ids:
        return np.zeros(0, dtype=np.int64), hexes_to_array([]), mapping
    return np.concatenate(ids), np.concatenate(rows), mapping


__all__ = ["bank_entries", "matches_from_hits"]
