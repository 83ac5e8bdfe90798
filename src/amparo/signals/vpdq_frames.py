"""vPDQ frames and their text forms: the reference text, the compact one-line form and
python-threatexchange's JSON list (see ``amparo.signals.vpdq`` for what each is for).

Text form (the reference's, one line a frame)::

    frame_number,quality,pdq_hex,timestamp_seconds
    0,100,e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,0.000

quality an integer 0-100, the timestamp with three decimals.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from amparo.errors import InvalidSignalError
from amparo.signals.pdq import PdqSignal

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


# --- python-threatexchange's form ----------------------------------------------------------


def te_vpdq_frames(text: str) -> VpdqFrames:
    """Parse python-threatexchange's vpdq signal: a JSON list of ``"pdq_hex,quality,
    timestamp"``. It has no frame numbers: frames are numbered in list order."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _te_invalid(f"not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise _te_invalid("JSON nested too deeply") from None
    if not isinstance(items, list) or not items:
        raise _te_invalid("expected a non-empty JSON list")
    frames: list[VpdqFrame] = []
    for number, item in enumerate(items):
        parts = item.split(",") if isinstance(item, str) else []
        if len(parts) != 3:
            raise _te_invalid(f"frame {number}: expected 'pdq_hex,quality,timestamp'")
        try:
            quality, timestamp = int(parts[1]), float(parts[2])
        except ValueError:
            raise _te_invalid(f"frame {number}: quality or timestamp is not a number") from None
        if not 0 <= quality <= 100 or not 0 <= timestamp < float("inf"):
            raise _te_invalid(f"frame {number}: quality or timestamp out of range")
        try:
            pdq_hex = PdqSignal.normalize(parts[0])
        except InvalidSignalError as exc:
            raise _te_invalid(f"frame {number}: {exc.message}") from None
        frames.append(VpdqFrame(number, quality, pdq_hex, round(timestamp, 3)))
    return VpdqFrames(tuple(frames))


def _te_invalid(message: str) -> InvalidSignalError:
    return InvalidSignalError(
        f"invalid threatexchange vpdq: {message}",
        hint='threatexchange writes vpdq as a JSON list of "pdq_hex,quality,timestamp" strings',
    )


def compact_line(text: str) -> str:
    """A vPDQ in any form Amparo reads, as the compact one-line form the line formats and the
    database carry: compact (``vpdq1:...``), the reference text, or python-threatexchange's
    JSON list of ``"pdq_hex,quality,timestamp"`` strings (its ``vpdq`` signal)."""
    value = text.strip()
    if value.startswith("["):
        return te_vpdq_frames(value).to_compact()
    return parse_vpdq(value).to_compact()
