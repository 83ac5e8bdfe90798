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

import base64
import binascii
import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from amparo.errors import InvalidSignalError
from amparo.signals.base import SignalType, register
from amparo.signals.digests import FileDigests, digest_source
from amparo.signals.pdq import DEFAULT_MIN_QUALITY, PdqSignal, pdq_from_pixels

if TYPE_CHECKING:
    from amparo.media.video import VideoInfo, VideoLimits, VideoSource

DEFAULT_COLLAPSE_DISTANCE = 4
"""Consecutive sampled frames within this many bits of the last kept frame are dropped (the
first is kept): a static shot becomes one frame. Well under the match threshold (31) so a
slow pan is not collapsed into frames that no longer resemble what they stand for."""
COMPACT_PREFIX = "vpdq1:"

_MAX_TEXT_FRAMES = 1_000_000


@dataclass(frozen=True)
class VpdqFrame:
    """One hashed frame."""

    frame_number: int
    quality: int
    pdq_hex: str
    timestamp: float
    """Seconds from the start of the video."""

    def to_line(self) -> str:
        return f"{self.frame_number},{self.quality},{self.pdq_hex},{self.timestamp:.3f}"


@dataclass(frozen=True)
class VpdqFrames:
    """A video's vPDQ: its frames, and the same frames with borders cut off where found.

    ``cropped`` holds only frames in which ``detect_borders`` found bars, each with the
    ``frame_number`` of its uncropped counterpart in ``frames``.
    """

    frames: tuple[VpdqFrame, ...]
    cropped: tuple[VpdqFrame, ...] = ()
    duration_seconds: float | None = None

    def to_text(self) -> str:
        """The reference text form (uncropped frames only), newline-terminated."""
        return frames_to_text(self.frames)

    def to_compact(self) -> str:
        return frames_to_compact(self)


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


# --- text form ---------------------------------------------------------------------------


def frames_to_text(frames: Iterable[VpdqFrame]) -> str:
    return "".join(frame.to_line() + "\n" for frame in frames)


def _invalid(message: str) -> InvalidSignalError:
    return InvalidSignalError(
        message,
        hint="vpdq text is one 'frame_number,quality,pdq_hex,timestamp_seconds' line a frame",
    )


def parse_frames(text: str) -> tuple[VpdqFrame, ...]:
    """Parse and validate the reference text form; raise InvalidSignalError."""
    frames: list[VpdqFrame] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if len(frames) >= _MAX_TEXT_FRAMES:
            raise _invalid(f"more than {_MAX_TEXT_FRAMES:,} frames")
        parts = line.split(",")
        if len(parts) != 4:
            raise _invalid(f"line {number}: expected 4 comma-separated fields, got {len(parts)}")
        try:
            frame_number, quality = int(parts[0]), int(parts[1])
            timestamp = float(parts[3])
        except ValueError:
            raise _invalid(f"line {number}: {line[:80]!r} has a non-numeric field") from None
        if frame_number < 0 or not 0 <= quality <= 100:
            raise _invalid(f"line {number}: frame number or quality out of range")
        if not math.isfinite(timestamp) or timestamp < 0:
            raise _invalid(f"line {number}: timestamp {parts[3]!r} is not a time")
        if frames and frame_number <= frames[-1].frame_number:
            raise _invalid(f"line {number}: frame numbers must increase")
        try:
            pdq_hex = PdqSignal.normalize(parts[2])
        except InvalidSignalError as exc:
            raise _invalid(f"line {number}: {exc.message}") from None
        frames.append(VpdqFrame(frame_number, quality, pdq_hex, round(timestamp, 3)))
    if not frames:
        raise _invalid("no frames")
    return tuple(frames)


# --- compact form ------------------------------------------------------------------------
# Why: bank entries live in one database column and in hash-list formats that carry one value
# a line (CSV, text); the reference text is multi-line and ~80 bytes a frame. The compact form
# is one line, 41 bytes a frame before base64 (~55 after), carries the cropped frames and the
# duration, and is explicit and versioned (no pickle):
#   header  "<BIId": version=1, n_frames, n_cropped, duration (NaN when unknown)
#   frame   "<IBI32s": frame_number, quality, timestamp in milliseconds, packed PDQ hash

_HEADER = struct.Struct("<BIId")
_FRAME = struct.Struct("<IBI32s")


def frames_to_compact(value: VpdqFrames) -> str:
    duration = math.nan if value.duration_seconds is None else value.duration_seconds
    parts = [_HEADER.pack(1, len(value.frames), len(value.cropped), duration)]
    for frame in (*value.frames, *value.cropped):
        millis = round(frame.timestamp * 1000)
        parts.append(
            _FRAME.pack(frame.frame_number, frame.quality, millis, bytes.fromhex(frame.pdq_hex))
        )
    return COMPACT_PREFIX + base64.urlsafe_b64encode(b"".join(parts)).decode().rstrip("=")


def frames_from_compact(text: str) -> VpdqFrames:
    body = text.strip()
    if not body.startswith(COMPACT_PREFIX):
        raise _invalid("compact vpdq must start with " + COMPACT_PREFIX)
    body = body[len(COMPACT_PREFIX) :]
    try:
        data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise _invalid("compact vpdq is not valid base64") from None
    if len(data) < _HEADER.size:
        raise _invalid("compact vpdq is too short")
    version, n_frames, n_cropped, duration = _HEADER.unpack_from(data)
    if version != 1 or len(data) != _HEADER.size + (n_frames + n_cropped) * _FRAME.size:
        raise _invalid("compact vpdq has an unknown version or a wrong length")
    frames = [
        VpdqFrame(number, quality, packed.hex(), millis / 1000)
        for number, quality, millis, packed in _FRAME.iter_unpack(data[_HEADER.size :])
    ]
    if not n_frames or any(not 0 <= f.quality <= 100 for f in frames):
        raise _invalid("compact vpdq has no frames or a quality out of range")
    return VpdqFrames(
        tuple(frames[:n_frames]),
        tuple(frames[n_frames:]),
        None if math.isnan(duration) else float(duration),
    )


def parse_vpdq(text: str) -> VpdqFrames:
    """Parse either form: the compact ``vpdq1:`` line or the reference text."""
    if text.lstrip().startswith(COMPACT_PREFIX):
        return frames_from_compact(text)
    return VpdqFrames(parse_frames(text))


@register
class VpdqSignal(SignalType):
    """vPDQ as a signal type. ``normalize`` accepts the reference text or the compact form
    and returns the canonical reference text (uncropped frames; newline-terminated).

    ``distance`` is ``100 - min(query share, bank share)`` in percent, with frames matched at
    the PDQ threshold: 0 when every frame of each video matches one of the other's.
    """

    name = "vpdq"
    exact = False
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
        from amparo.index.video import compare_videos

        result = compare_videos(parse_vpdq(a), parse_vpdq(b))
        return share_distance(result.query_share, result.bank_share)


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
    "frames_from_compact",
    "frames_to_compact",
    "frames_to_text",
    "hash_video",
    "parse_frames",
    "parse_vpdq",
]
