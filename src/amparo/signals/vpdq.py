"""vPDQ: a video as the PDQ hashes of its sampled frames (Meta's vPDQ, ThreatExchange).

Text form (the reference's, one line a frame)::

    frame_number,quality,pdq_hex,timestamp_seconds
    0,100,e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,0.000

quality an integer 0-100, the timestamp with three decimals. The reference hashes every
frame; Amparo samples one frame a second by default and collapses runs of near-identical
frames, which keeps the share-of-frames matching rule meaningful and the lists short.

Amparo also hashes each frame with its letterbox/pillarbox bars cut off (``cropped``), so a
barred copy matches an unbarred one; the reference text carries only the uncropped frames,
the compact form (``vpdq1:...``, one line, for database columns and one-value-a-line
hash-list formats) carries both.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from amparo.errors import InvalidSignalError
from amparo.signals.base import SignalType, register
from amparo.signals.digests import FileDigests, digest_source
from amparo.signals.pdq import DEFAULT_MIN_QUALITY, PdqSignal, pdq_from_pixels
from amparo.signals.vpdq_compare import compare_videos
from amparo.signals.vpdq_frames import (
    COMPACT_PREFIX,
    VpdqFrame,
    VpdqFrames,
    compact_line,
    frames_from_compact,
    frames_to_compact,
    frames_to_text,
    parse_frames,
    parse_vpdq,
    te_vpdq_frames,
)

if TYPE_CHECKING:
    from amparo.media.video import VideoInfo, VideoLimits, VideoSource

DEFAULT_COLLAPSE_DISTANCE = 4
"""Consecutive sampled frames within this many bits of the last kept frame are dropped (the
first is kept): a static shot becomes one frame. Well under the match threshold (31) so a
slow pan is not collapsed into frames that no longer resemble what they stand for."""


@dataclass(frozen=True)
class VideoHashes:
    """Everything ``hash_video`` computes for one file."""

    vpdq: VpdqFrames
    digests: FileDigests
    info: VideoInfo
    sample_fps: float | None

    @property
    def md5(self) -> str:
        return self.digests.md5

    @property
    def sha256(self) -> str:
        return self.digests.sha256


@register
class VpdqSignal(SignalType):
    """vPDQ as a signal type. ``normalize`` accepts the reference text or the compact form
    and returns the canonical reference text (uncropped frames; newline-terminated).

    ``distance`` is ``100 - min(query share, bank share)`` in percent, with frames matched at
    the PDQ threshold: 0 when every frame of each video matches one of the other's.
    """

    name = "vpdq"
    exact = False
    index_kind = "video"
    long_value = True
    examples: ClassVar[tuple[str, ...]] = (
        "0,100,e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,0.000\n"
        "30,100,c0f11178372c6aaccddea259648fbfd62f434c89c9e99b249772be216c8d055c,1.000\n",
        "0,100,f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22,0.000\n",
    )

    @classmethod
    def normalize(cls, text: str) -> str:
        return frames_to_text(parse_vpdq(text).frames)

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        result = compare_videos(parse_vpdq(a), parse_vpdq(b))
        return share_distance(result.query_share, result.bank_share)

    @classmethod
    def from_line(cls, text: str) -> str:
        """The compact form (the reference text is multi-line; see ``compact_line``)."""
        return compact_line(text)

    @classmethod
    def to_line(cls, value: str) -> str:
        if value.startswith(COMPACT_PREFIX):
            return value
        return parse_vpdq(value).to_compact()

    @classmethod
    def read_value(cls, rest: str) -> str:
        """The compact form (one token) or threatexchange's JSON list, which has spaces
        inside; anything after the list is metadata and ignored."""
        if rest.startswith(COMPACT_PREFIX):
            return cls.from_line(rest.split()[0])
        try:
            items, _ = json.JSONDecoder().raw_decode(rest)
        except json.JSONDecodeError:
            items = None
        if not isinstance(items, list):
            raise InvalidSignalError(
                "a te vpdq is a JSON list of 'pdq_hex,quality,timestamp' strings or vpdq1:...",
            )
        return cls.from_line(json.dumps(items))


def share_distance(query_share: float, bank_share: float) -> int:
    """A video match's distance: ``100 - min(query share, bank share)`` in whole percent (the
    small epsilon keeps shares such as 0.29 from flooring to 28 through float error)."""
    return 100 - math.floor(100 * min(query_share, bank_share) + 1e-9)


# --- hashing -----------------------------------------------------------------------------


def collapse_frames(
    frames: Sequence[VpdqFrame], max_distance: int = DEFAULT_COLLAPSE_DISTANCE
) -> list[VpdqFrame]:
    """Drop each frame within ``max_distance`` bits of the last kept one (keep the first).
    A negative ``max_distance`` keeps every frame."""
    kept: list[VpdqFrame] = []
    for frame in frames:
        if (
            max_distance >= 0
            and kept
            and PdqSignal.distance(kept[-1].pdq_hex, frame.pdq_hex) <= max_distance
        ):
            continue
        kept.append(frame)
    return kept


def hash_video(
    source: VideoSource,
    *,
    sample_fps: float | None = 1.0,
    crop_borders: bool = True,
    collapse_distance: int = DEFAULT_COLLAPSE_DISTANCE,
    max_short_side: int | None = 600,
    limits: VideoLimits | None = None,
    threads: int = 1,
    digests: FileDigests | None = None,
) -> VideoHashes:
    """vPDQ and file digests of a video (a path, bytes or a seekable binary file).

    ``sample_fps=None`` hashes every frame, as the reference does; ``collapse_distance=-1``
    keeps every sampled frame; ``max_short_side=None`` hashes frames at their stored size
    (the reference's choice; 600 is Amparo's canonical PDQ size, see docs/video.md).
    ``digests`` saves reading the file again when the caller has them already.
    Raises the ``MediaError`` subclasses of ``amparo.media.video``.
    """
    from amparo.media.borders import detect_borders
    from amparo.media.video import DEFAULT_LIMITS, open_video

    if digests is None:
        digests = digest_source(source)
    frames: list[VpdqFrame] = []
    cropped: dict[int, VpdqFrame] = {}
    with open_video(source, limits=limits or DEFAULT_LIMITS, threads=threads) as video:
        for sampled in video.frames(sample_fps=sample_fps, max_short_side=max_short_side):
            pdq = pdq_from_pixels(sampled.luma)
            frame = VpdqFrame(sampled.frame_number, pdq.quality, pdq.hex, sampled.timestamp)
            if (
                collapse_distance >= 0
                and frames
                and PdqSignal.distance(frames[-1].pdq_hex, pdq.hex) <= collapse_distance
            ):
                continue
            frames.append(frame)
            if crop_borders:
                borders = detect_borders(sampled.luma)
                if borders:
                    inner = pdq_from_pixels(borders.crop(sampled.luma))
                    cropped[frame.frame_number] = VpdqFrame(
                        frame.frame_number, inner.quality, inner.hex, frame.timestamp
                    )
        info = video.info
    return VideoHashes(
        VpdqFrames(tuple(frames), tuple(cropped.values()), info.duration_seconds),
        digests,
        info,
        sample_fps,
    )


__all__ = [
    "COMPACT_PREFIX",
    "DEFAULT_COLLAPSE_DISTANCE",
    "DEFAULT_MIN_QUALITY",
    "VideoHashes",
    "VpdqFrame",
    "VpdqFrames",
    "VpdqSignal",
    "collapse_frames",
    "compact_line",
    "frames_from_compact",
    "frames_to_compact",
    "frames_to_text",
    "hash_video",
    "parse_frames",
    "parse_vpdq",
    "share_distance",
    "te_vpdq_frames",
]
