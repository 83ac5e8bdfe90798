"""Safe video decoding with PyAV (the FFmpeg libraries in its wheel): frames sampled by
timestamp, rotation metadata applied, decoded to luma at the size PDQ needs, under limits.

What it decodes: whatever FFmpeg demuxes and decodes, tested on MP4, MOV, MKV, WebM, AVI,
MPEG-TS and animated GIF. Every frame of an inter-coded stream must be decoded (later frames
are predicted from earlier ones), but only sampled frames are converted: ``reformat`` to
8-bit grey at the reduced size in one swscale pass, which is what keeps hashing at a small
fraction of decoding (docs/video.md).

Errors: ``UnsupportedMediaError`` (not a video, no video stream, no decoder),
``CorruptMediaError`` (empty, truncated, damaged, no decodable frame) and
``MediaTooLargeError`` (over a size, resolution, duration or decode-time limit).
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import av
import av.error
import numpy as np
from numpy.typing import NDArray

from amparo.errors import (
    CorruptMediaError,
    InternalError,
    MediaTooLargeError,
    UnsupportedMediaError,
)
from amparo.media.sniff import HEAD_BYTES, sniff

VideoSource = str | os.PathLike[str] | bytes | BinaryIO
"""A path, the file's bytes, or a seekable binary file object."""

DEFAULT_SAMPLE_FPS = 1.0
DEFAULT_MAX_SHORT_SIDE = 600
"""Sampled frames are reduced so that their short side is at most this (PDQ's canonical
size, ``amparo.signals.pdq.PDQ_CANONICAL_SIDE``); hashing them needs no further resize."""

_TRUNCATION_SLACK_SECONDS = 1.0
SPARSE_SAMPLING = 4
"""Frames per sample from which decoding may skip non-reference frames."""
_TRUNCATION_SHARE = 0.9


@dataclass(frozen=True)
class VideoLimits:
    """What a video may cost before Amparo refuses it. The defaults equal the ``video_*``
    settings' (a test checks it): ``media`` imports nothing above ``errors``, so
    :func:`amparo.hashing.video_limits` builds the limits from the settings."""

    max_file_size: int = 8 * 1024**3
    """Bytes."""
    max_pixels: int = 8192 * 4320
    """Width x height of one frame (8K)."""
    max_duration_seconds: float = 6 * 3600.0
    timeout_seconds: float = 900.0
    """Wall-clock time allowed for decoding one video; past it decoding stops and raises."""
    reference_frames_only: bool = True
    """Decoding policy, not a limit: when sampling keeps at most one frame in
    ``SPARSE_SAMPLING`` (1 fps of 30 fps video), skip decoding the frames no other frame
    refers to (B-frames): about twice as fast on typical H.264. Frames decoded are exact; a
    sample is the first decoded frame at or after its time (a few frames later at most)."""
    skip_deblocking: bool = False
    """With ``reference_frames_only`` in effect, also skip H.264's deblocking filter: another
    ~20% faster, but frames are no longer exact and hashes drift from the reference by a
    median of 2 and up to 12 bits (docs/video.md); off by default."""


DEFAULT_LIMITS = VideoLimits()


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the first video stream."""

    container: str
    codec: str
    width: int
    """Display width: after rotation metadata is applied (known once a frame is decoded)."""
    height: int
    rotation: int
    """Degrees counterclockwise the stored frames are turned for display (0, 90, 180, -90);
    read from the display matrix of the first decoded frame, 0 until then."""
    duration_seconds: float | None
    frame_rate: float | None
    file_size: int | None


@dataclass(frozen=True)
class SampledFrame:
    frame_number: int
    """0-based position of the frame in the stream's decoded order (the reference's
    ``frame_number``), counting frames that were not sampled."""
    timestamp: float
    """Seconds from the start of the stream."""
    luma: NDArray[np.uint8]
    """``(h, w)`` 8-bit luma, upright, short side at most ``max_short_side``."""


def _open_input(
    source: VideoSource, limits: VideoLimits
) -> tuple[str | BinaryIO, int | None, bytes]:
    """Resolve ``source`` to what ``av.open`` takes; return it, the size and the first bytes."""
    size: int | None
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        size = len(data)
        head = data[:HEAD_BYTES]
        target: str | BinaryIO = io.BytesIO(data)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            size = path.stat().st_size
            with path.open("rb") as fh:
                head = fh.read(HEAD_BYTES)
        except OSError as exc:
            raise CorruptMediaError(f"cannot read {path}: {exc.strerror}") from None
        target = str(path)
    else:
        start = source.tell()
        head = source.read(HEAD_BYTES)
        size = source.seek(0, io.SEEK_END) - start if source.seekable() else None
        source.seek(start)
        target = source
    if size == 0 or not head:
        raise CorruptMediaError("the video file is empty")
    if size is not None and size > limits.max_file_size:
        raise MediaTooLargeError(
            f"video is {size:,} bytes, over the limit of {limits.max_file_size:,}",
            hint="raise the video file size limit if such files are legitimate here",
        )
    return target, size, head


def _looks_like_media(head: bytes) -> bool:
    return sniff(head) in ("video", "gif")


def _seconds(value: int | None, time_base: object) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)  # type: ignore[operator]


class VideoDecoder:
    """An open video: ``info`` at once, sampled frames from ``frames()``. Close it (or use
    ``with``) to release the demuxer."""

    def __init__(
        self, source: VideoSource, *, limits: VideoLimits = DEFAULT_LIMITS, threads: int = 1
    ) -> None:
        self._limits = limits
        self._started = time.monotonic()
        target, size, head = _open_input(source, limits)
        try:
            self._container = av.open(target, mode="r")
        except (av.error.InvalidDataError, av.error.EOFError) as exc:
            if _looks_like_media(head):
                raise CorruptMediaError(f"damaged or truncated video: {exc}") from None
            raise UnsupportedMediaError(
                "not a video format Amparo decodes",
                hint="supported: MP4, MOV, MKV, WebM, AVI, MPEG-TS, animated GIF",
            ) from None
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(f"the video cannot be opened: {exc}") from None
        try:
            self.info = self._inspect(size, threads)
        except BaseException:
            self._container.close()
            raise

    def _inspect(self, size: int | None, threads: int) -> VideoInfo:
        if not self._container.streams.video:
            raise UnsupportedMediaError(
                "the file has no video stream", hint="audio-only files are not hashed as video"
            )
        stream = self._container.streams.video[0]
        self._stream = stream
        ctx = stream.codec_context
        if ctx is None or ctx.name is None:
            raise UnsupportedMediaError("the video's codec has no decoder here")
        if threads != 1:
            ctx.thread_count = threads
            ctx.thread_type = "AUTO"
        else:
            ctx.thread_count = 1
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width * height > self._limits.max_pixels:
            raise MediaTooLargeError(
                f"video frames are {width}x{height}, over {self._limits.max_pixels:,} pixels",
                hint="raise the video resolution limit if such files are legitimate here",
            )
        duration = _seconds(stream.duration, stream.time_base)
        if duration is None and self._container.duration is not None:
            duration = self._container.duration / av.time_base
        if duration is not None and duration > self._limits.max_duration_seconds:
            raise MediaTooLargeError(
                f"video lasts {duration:,.0f} s, over the limit of "
                f"{self._limits.max_duration_seconds:,.0f} s",
                hint="raise the video duration limit if such files are legitimate here",
            )
        self._start = _seconds(stream.start_time, stream.time_base)
        rate = stream.average_rate or stream.guessed_rate
        return VideoInfo(
            container=self._container.format.name,
            codec=str(ctx.name),
            width=width,
            height=height,
            rotation=0,
            duration_seconds=duration,
            frame_rate=float(rate) if rate else None,
            file_size=size,
        )

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def frames(
        self,
        *,
        sample_fps: float | None = DEFAULT_SAMPLE_FPS,
        max_short_side: int | None = DEFAULT_MAX_SHORT_SIDE,
    ) -> Iterator[SampledFrame]:
        """Decode the stream and yield sampled frames.

        ``sample_fps``: the first frame at or after each multiple of ``1 / sample_fps``
        seconds is sampled (by timestamp, so variable frame rates sample evenly); ``None``
        samples every frame, as the reference vPDQ implementation does.
        ``max_short_side``: sampled frames are scaled so their short side is at most this;
        ``None`` keeps the stored size.
        """
        if sample_fps is not None and not sample_fps > 0:
            # Callers pass a setting that load_settings already checked to be positive.
            raise InternalError(f"sample_fps must be positive or None, got {sample_fps}")
        limits = self._limits
        deadline = self._started + limits.timeout_seconds
        next_sample = 0.0
        number = -1
        last_time = 0.0
        rate = self.info.frame_rate
        skipping = bool(
            limits.reference_frames_only
            and sample_fps is not None
            and rate
            and rate / sample_fps >= SPARSE_SAMPLING
        )
        ctx = self._stream.codec_context
        if skipping:
            ctx.skip_frame = "NONREF"
            if limits.skip_deblocking:
                ctx.options = {**ctx.options, "skip_loop_filter": "all"}
        first = True
        try:
            for frame in self._container.decode(self._stream):
                if skipping and rate and frame.time is not None:
                    # Skipped frames are not counted by the decoder: number by time instead.
                    number = max(number + 1, round(self._timestamp(frame, 0) * rate))
                else:
                    number += 1
                if time.monotonic() > deadline:
                    raise MediaTooLargeError(
                        f"decoding took longer than {limits.timeout_seconds:g} s",
                        hint="raise the video decode time limit, or check the file",
                    )
                if first and frame.rotation:
                    self._note_rotation(frame.rotation)
                first = False
                timestamp = self._timestamp(frame, number)
                last_time = max(last_time, timestamp)
                if timestamp > limits.max_duration_seconds:
                    raise MediaTooLargeError(
                        f"video runs past the limit of {limits.max_duration_seconds:,.0f} s"
                    )
                if sample_fps is not None:
                    if timestamp + 1e-6 < next_sample:
                        continue
                    next_sample = (math.floor(timestamp * sample_fps + 1e-6) + 1) / sample_fps
                yield SampledFrame(number, timestamp, self._luma(frame, max_short_side))
        except (MediaTooLargeError, UnsupportedMediaError, CorruptMediaError):
            raise
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(f"damaged video: {exc}") from None
        except MemoryError:
            raise MediaTooLargeError("the video needs more memory than is available") from None
        if number < 0:
            raise CorruptMediaError("the video stream has no decodable frame")
        self._check_complete(last_time)

    def _timestamp(self, frame: av.VideoFrame, number: int) -> float:
        seconds = frame.time
        if seconds is None:
            rate = self.info.frame_rate or 25.0
            return number / rate
        if self._start is None:
            self._start = seconds
        return max(0.0, seconds - self._start)

    def _note_rotation(self, rotation: int) -> None:
        turns = round(rotation / 90) % 4
        info = self.info
        if turns % 2:
            info = replace(info, width=info.height, height=info.width)
        self.info = replace(info, rotation=(0, 90, 180, -90)[turns])

    def _check_complete(self, last_time: float) -> None:
        """A truncated file decodes cleanly up to where it was cut: compare with the
        duration the container declares."""
        declared = self.info.duration_seconds
        if declared is None or declared <= 2 * _TRUNCATION_SLACK_SECONDS:
            return
        if last_time + _TRUNCATION_SLACK_SECONDS < declared * _TRUNCATION_SHARE:
            raise CorruptMediaError(
                f"video is truncated: frames stop at {last_time:.1f} s of {declared:.1f} s"
            )

    def _luma(self, frame: av.VideoFrame, max_short_side: int | None) -> NDArray[np.uint8]:
        width, height = frame.width, frame.height
        if width * height > self._limits.max_pixels:
            raise MediaTooLargeError(f"a video frame is {width}x{height} pixels, over the limit")
        short = min(width, height)
        if max_short_side is not None and short > max_short_side:
            scale = max_short_side / short
            width, height = max(1, round(width * scale)), max(1, round(height * scale))
        # One swscale pass: scale and convert to full-range 8-bit grey; area averaging is
        # what keeps the hash within a bit or two of a full-size decode (docs/video.md).
        grey = frame.reformat(width=width, height=height, format="gray", interpolation="AREA")
        luma = np.asarray(grey.to_ndarray(), dtype=np.uint8)
        turns = round(frame.rotation / 90) % 4
        if turns:
            luma = np.ascontiguousarray(np.rot90(luma, k=turns))
        return luma


def open_video(
    source: VideoSource, *, limits: VideoLimits = DEFAULT_LIMITS, threads: int = 1
) -> VideoDecoder:
    """Open a video for decoding. ``threads``: FFmpeg decoder threads; 1 suits worker
    processes (one video per core), more lowers the latency of a single video."""
    return VideoDecoder(source, limits=limits, threads=threads)


def sample_frames(
    source: VideoSource,
    *,
    sample_fps: float | None = DEFAULT_SAMPLE_FPS,
    max_short_side: int | None = DEFAULT_MAX_SHORT_SIDE,
    limits: VideoLimits = DEFAULT_LIMITS,
) -> tuple[VideoInfo, list[SampledFrame]]:
    """Decode ``source`` and return its info and every sampled frame (in memory: at 1 frame a
    second and 600 px, about 0.4 MB a second of video; use ``open_video`` to stream)."""
    with open_video(source, limits=limits) as video:
        return video.info, list(video.frames(sample_fps=sample_fps, max_short_side=max_short_side))
