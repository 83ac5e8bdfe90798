"""vPDQ comparison as pure functions: how closely two videos' frames match.

A video's frames are *slots*: each uncropped frame with, where bars were found, its cropped
variant. A query slot matches a bank slot when any variant of one is within the PDQ threshold
of any variant of the other; variants with quality below the minimum are ignored, and slots
with no usable variant are left out of the shares. Two videos match when the share of the
query's slots that match some bank slot and the share of the bank video's slots matched by
the query both reach their thresholds; in clip mode (the query is a part of a longer video)
only the query share counts.

This is the definition of vPDQ's distance (``VpdqSignal.distance``); matching many bank
videos at once through a shared PDQ index is ``amparo.index.video``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from amparo.signals.pdq import (
    DEFAULT_MIN_QUALITY,
    DEFAULT_THRESHOLD,
    hamming_matrix,
    hexes_to_array,
)
from amparo.signals.vpdq_frames import VpdqFrames

DEFAULT_QUERY_SHARE = 0.8
DEFAULT_BANK_SHARE = 0.8


@dataclass(frozen=True)
class VideoMatchOptions:
    distance: int = DEFAULT_THRESHOLD
    """Frames match at PDQ distance <= this."""
    min_quality: int = DEFAULT_MIN_QUALITY
    query_share: float = DEFAULT_QUERY_SHARE
    bank_share: float = DEFAULT_BANK_SHARE
    clip: bool = False
    """The query may be a part of a longer bank video: only ``query_share`` is required."""
    bank_coverage_seconds: float = 0.0
    """A bank slot within this many seconds of a matched bank slot counts as matched. For
    bank videos hashed more densely than queries (every frame against 1 a second), set it to
    about half the query's sampling interval: the bank share then measures how much of the
    bank video's time the query covers, and a query trimmed at any offset still matches."""
    query_sample_fps: float | None = None
    """The rate queries are sampled at. When set, the bank share is measured on the bank
    frames that rate picks (``sampled_slots``: the same rule and timestamps as the query's
    decoder), not on every dense bank frame: both shares count the same frames, so a
    byte-identical copy matches on every frame compared (distance 0). Query frames are still
    looked up among all bank frames, which is what lines up a copy trimmed at any offset."""


DEFAULT_OPTIONS = VideoMatchOptions()


@dataclass(frozen=True)
class TimeRange:
    start: float
    end: float
    """Seconds; ``end`` is where the next unmatched slot starts (or the video's end)."""


@dataclass(frozen=True)
class VideoMatch:
    video_id: int
    query_share: float
    """Matched usable query slots / usable query slots."""
    bank_share: float
    """Matched usable bank-video slots / usable bank-video slots."""
    is_match: bool
    query_ranges: tuple[TimeRange, ...]
    """Where in the query the matched slots are."""
    bank_ranges: tuple[TimeRange, ...]
    """Where in the bank video the matched slots are."""
    query_slots: int
    bank_slots: int


def frame_rows(
    video: VpdqFrames, min_quality: int = DEFAULT_MIN_QUALITY
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Packed ``(n, 32)`` PDQ hashes of every usable variant of every slot, and each row's
    slot (the position in ``video.frames``). Duplicate hashes within a slot are dropped."""
    slot_of = {frame.frame_number: i for i, frame in enumerate(video.frames)}
    hexes: list[str] = []
    slots: list[int] = []
    for i, frame in enumerate(video.frames):
        if frame.quality >= min_quality:
            hexes.append(frame.pdq_hex)
            slots.append(i)
    for frame in video.cropped:
        slot = slot_of.get(frame.frame_number)
        if slot is None or frame.quality < min_quality:
            continue
        if video.frames[slot].pdq_hex != frame.pdq_hex:
            hexes.append(frame.pdq_hex)
            slots.append(slot)
    return hexes_to_array(hexes), np.asarray(slots, dtype=np.int64)


def _usable(video: VpdqFrames, min_quality: int) -> NDArray[np.bool_]:
    usable = np.zeros(len(video.frames), dtype=bool)
    _, slots = frame_rows(video, min_quality)
    usable[slots] = True
    return usable


def time_ranges(
    video: VpdqFrames, matched: NDArray[np.bool_], usable: NDArray[np.bool_]
) -> tuple[TimeRange, ...]:
    """Merge matched slots into time ranges; unusable slots between two matched ones do not
    break a range. A range ends where the next slot starts, or at the video's end."""
    frames = video.frames
    end_of_video = video.duration_seconds
    ranges: list[TimeRange] = []
    start: float | None = None
    last = -1
    for i in range(len(frames)):
        if not usable[i]:
            continue
        if matched[i]:
            if start is None:
                start = frames[i].timestamp
            last = i
        elif start is not None:
            ranges.append(TimeRange(start, frames[i].timestamp))
            start = None
    if start is not None:
        if last + 1 < len(frames):
            end = frames[last + 1].timestamp
        else:
            end = max(frames[last].timestamp, end_of_video or 0.0)
        ranges.append(TimeRange(start, end))
    return tuple(ranges)


def sampled_slots(video: VpdqFrames, sample_fps: float) -> NDArray[np.int64]:
    """The slots that sampling ``video`` at ``sample_fps`` would keep: the first frame at or
    after each multiple of ``1 / sample_fps`` seconds (``VideoDecoder.frames``' rule). A
    video already as sparse as that keeps every slot."""
    times = np.fromiter((f.timestamp for f in video.frames), dtype=np.float64)
    if not len(times):
        return np.zeros(0, dtype=np.int64)
    ticks = np.floor(times * sample_fps + 1e-6).astype(np.int64)
    # timestamps ascend, so the first slot of each tick is where the tick changes
    first = np.concatenate(([True], ticks[1:] > ticks[:-1]))
    return np.flatnonzero(first).astype(np.int64)


def _covered(video: VpdqFrames, matched: NDArray[np.bool_], seconds: float) -> NDArray[np.bool_]:
    times = np.fromiter((f.timestamp for f in video.frames), dtype=np.float64)
    hit_times = times[matched]  # ascending, as frames are in time order
    pos = np.searchsorted(hit_times, times)
    before = np.abs(times - hit_times[np.clip(pos - 1, 0, len(hit_times) - 1)])
    after = np.abs(hit_times[np.clip(pos, 0, len(hit_times) - 1)] - times)
    covered: NDArray[np.bool_] = np.minimum(before, after) <= seconds + 1e-9
    return covered | matched


def video_result(
    video_id: int,
    query: VpdqFrames,
    bank: VpdqFrames,
    query_matched: NDArray[np.bool_],
    bank_matched: NDArray[np.bool_],
    options: VideoMatchOptions,
) -> VideoMatch:
    """The result of ``query`` against one bank video, given which slots of each were matched
    (``query_matched``, ``bank_matched``: one flag a frame)."""
    q_usable, b_usable = _usable(query, options.min_quality), _usable(bank, options.min_quality)
    if options.bank_coverage_seconds > 0 and bank_matched.any():
        bank_matched = _covered(bank, bank_matched, options.bank_coverage_seconds)
    q_matched, b_matched = query_matched & q_usable, bank_matched & b_usable
    # The bank share counts the bank frames the query's sampling picks (when it is known),
    # so bank and query are measured on the same timestamps.
    counted = (
        sampled_slots(bank, options.query_sample_fps)
        if options.query_sample_fps
        else np.arange(len(bank.frames), dtype=np.int64)
    )
    q_total, b_total = int(q_usable.sum()), int(b_usable[counted].sum())
    q_share = float(q_matched.sum()) / q_total if q_total else 0.0
    b_share = float(b_matched[counted].sum()) / b_total if b_total else 0.0
    is_match = q_share >= options.query_share and (options.clip or b_share >= options.bank_share)
    return VideoMatch(
        video_id=video_id,
        query_share=q_share,
        bank_share=b_share,
        is_match=bool(q_total and b_total and is_match),
        query_ranges=time_ranges(query, q_matched, q_usable),
        bank_ranges=time_ranges(bank, b_matched, b_usable),
        query_slots=q_total,
        bank_slots=b_total,
    )


def compare_videos(
    query: VpdqFrames,
    bank: VpdqFrames,
    options: VideoMatchOptions = DEFAULT_OPTIONS,
    *,
    video_id: int = 0,
) -> VideoMatch:
    """Match one query video against one bank video."""
    q_rows, q_slots = frame_rows(query, options.min_quality)
    b_rows, b_slots = frame_rows(bank, options.min_quality)
    q_matched = np.zeros(len(query.frames), dtype=bool)
    b_matched = np.zeros(len(bank.frames), dtype=bool)
    if len(q_rows) and len(b_rows):
        qi, bi = np.nonzero(hamming_matrix(q_rows, b_rows) <= options.distance)
        q_matched[q_slots[qi]] = True
        b_matched[b_slots[bi]] = True
    return video_result(video_id, query, bank, q_matched, b_matched, options)


__all__ = [
    "DEFAULT_BANK_SHARE",
    "DEFAULT_OPTIONS",
    "DEFAULT_QUERY_SHARE",
    "TimeRange",
    "VideoMatch",
    "VideoMatchOptions",
    "compare_videos",
    "frame_rows",
    "sampled_slots",
    "time_ranges",
    "video_result",
]
