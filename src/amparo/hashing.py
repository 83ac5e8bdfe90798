"""Hash one piece of media: file digests always, PDQ when it decodes as an image, vPDQ when
it is a video."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from amparo.config import DEFAULTS, Settings
from amparo.errors import MediaError, MediaTooLargeError
from amparo.media.decode import (
    DECODE_BUDGET,
    DEFAULT_MAX_DECODE_MEMORY,
    DEFAULT_MAX_PIXELS,
    decode_image,
)
from amparo.media.sniff import HEAD_BYTES, sniff
from amparo.signals.digests import FileDigests, digest_bytes, digest_source
from amparo.signals.pdq import (
    MIRROR_INDEX,
    canonical_luma,
    pdq_and_mirror,
    pdq_dihedral_from_pixels,
    pdq_trimmed_from_luma,
)

if TYPE_CHECKING:
    from amparo.media.video import VideoLimits, VideoSource

VideoSummary = dict[str, float | int | None]
"""``duration_seconds``, ``frames`` (hashed frames kept), ``cropped_frames``, ``width``,
``height``, ``frame_rate``, ``sample_fps`` of a hashed video."""


@dataclass
class MediaHashes:
    """Every signal computed for one piece of media. Nothing of the media itself is kept."""

    size: int
    md5: str
    sha1: str
    sha256: str
    media_type: str | None = None
    pdq: str | None = None
    pdq_quality: int | None = None
    pdq_dihedral: list[str] = field(default_factory=list)
    """The other seven dihedral PDQ hashes (rotations, flips), when asked for."""
    error: str | None = None
    """Why no perceptual hash could be computed (digests are still valid)."""
    pdq_mirror: str | None = None
    """PDQ of the horizontally mirrored picture (free: PDQ's dihedral hashes share one
    DCT), when mirrored copies are matched (``match_mirrored``)."""
    pdq_trimmed: str | None = None
    """PDQ of the picture with its uniform borders, pads or caption bars trimmed
    (:mod:`amparo.media.trim`); None when nothing was trimmed."""
    pdq_trimmed_mirror: str | None = None
    """The trimmed picture's mirrored PDQ, when both apply."""
    trim: tuple[float, float, float, float] | None = None
    """What was trimmed, as shares of the height (top, bottom) and width (left, right)."""
    vpdq: str | None = None
    """A video's vPDQ in the compact one-line form (``vpdq1:...``, cropped frames included)."""
    video: VideoSummary | None = None
    """What was learnt about a hashed video (see ``VideoSummary``)."""

    def signals(self) -> dict[str, str]:
        """Signal type name -> value, for the signals that were computed."""
        out = {"md5": self.md5, "sha1": self.sha1, "sha256": self.sha256}
        if self.pdq is not None:
            out["pdq"] = self.pdq
        if self.vpdq is not None:
            out["vpdq"] = self.vpdq
        return out

    def to_json(self, *, vpdq_text: bool = False) -> dict[str, object]:
        """JSON of the hashes. Videos carry ``vpdq`` (compact) and ``video`` instead of the
        PDQ fields; ``vpdq_text`` adds the reference text form as ``vpdq_text``."""
        data: dict[str, object] = {"media_type": self.media_type, "size": self.size}
        if self.media_type == "video" or self.vpdq is not None:
            data["vpdq"] = self.vpdq
            data["video"] = self.video
            if vpdq_text and self.vpdq is not None:
                from amparo.signals.vpdq import parse_vpdq

                data["vpdq_text"] = parse_vpdq(self.vpdq).to_text()
        else:
            data["pdq"] = self.pdq
            data["pdq_quality"] = self.pdq_quality
        data.update(md5=self.md5, sha1=self.sha1, sha256=self.sha256)
        if self.pdq_dihedral:
            data["pdq_dihedral"] = self.pdq_dihedral
        if self.pdq_trimmed is not None:
            data["pdq_trimmed"] = self.pdq_trimmed
            data["trim"] = dict(
                zip(("top", "bottom", "left", "right"), self.trim or (), strict=True)
            )
        if self.error:
            data["error"] = self.error
        return data


# A video decoder holds its reference frames (H.264/HEVC keep at most 16, 6 at 8K levels) and
# a few frames in flight; frames are YUV 4:2:0 (1.5 bytes a pixel) or up to 6 bytes a pixel
# (4:4:4 at 16 bits). One frame's pixels times this is the decode's working set.
VIDEO_FRAME_COPIES = 8
VIDEO_BYTES_PER_PIXEL = 1.5


def video_max_pixels(max_decode_memory: int, default: int) -> int:
    """The largest frame (width x height) a video may have within ``max_decode_memory``."""
    return min(default, int(max_decode_memory / (VIDEO_BYTES_PER_PIXEL * VIDEO_FRAME_COPIES)))


def video_limits(settings: Settings) -> VideoLimits:
    """The video decoding limits the settings ask for: frames no larger than 8K, nor than
    ``max_decode_memory`` allows."""
    from amparo.media.video import VideoLimits

    return VideoLimits(
        max_file_size=settings.video_max_file_bytes,
        max_duration_seconds=float(settings.video_max_duration_seconds),
        timeout_seconds=float(settings.video_timeout_seconds),
        max_pixels=video_max_pixels(settings.max_decode_memory, VideoLimits.max_pixels),
    )


def hash_media(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    dihedral: bool = False,
    video_sample_fps: float = DEFAULTS.video_sample_fps,
    video_limits: VideoLimits | None = None,
    max_memory: int = DEFAULT_MAX_DECODE_MEMORY,
    mirror: bool = True,
    trim: bool = True,
) -> MediaHashes:
    """Hash media bytes: a video gets vPDQ, anything else is tried as an image (an animated
    GIF is an image: its first frame is PDQ-hashed). Decoding problems are recorded in
    ``error``, not raised. ``max_memory``: the decode's memory bound (``max_decode_memory``).

    ``mirror``: also the left-right mirrored PDQ (``pdq_mirror``); ``trim``: also the PDQ of
    the picture with borders, pads and caption bars trimmed (``pdq_trimmed``, and
    ``pdq_trimmed_mirror`` with ``mirror``), when there are any (docs/detection.md)."""
    digests = digest_bytes(data)
    media_type = sniff(data[:HEAD_BYTES])
    if media_type == "video":
        return hash_video_media(
            data, sample_fps=video_sample_fps, limits=video_limits, digests=digests
        )
    result = hashes_from_digests(digests, media_type)
    try:
        # Luma straight from the decoder (a JPEG's Y channel, DCT-reduced): the first half of
        # PDQ's canonical preprocessing; canonical_luma does the rest.
        decoded = decode_image(data, max_pixels=max_pixels, mode="L", max_memory=max_memory)
    except MediaError as exc:
        result.error = exc.message
        return result
    luma = canonical_luma(decoded.pixels)
    if dihedral:
        hashes, quality = pdq_dihedral_from_pixels(luma)
        result.pdq, result.pdq_dihedral = hashes[0], hashes[1:]
        result.pdq_mirror = hashes[MIRROR_INDEX] if mirror else None
    else:
        pdq, result.pdq_mirror = pdq_and_mirror(luma, mirror=mirror)
        result.pdq, quality = pdq.hex, pdq.quality
    result.pdq_quality = quality
    trimmed = pdq_trimmed_from_luma(luma, mirror=mirror) if trim else None
    if trimmed is not None:
        result.pdq_trimmed, result.pdq_trimmed_mirror = trimmed.pdq.hex, trimmed.mirror
        result.trim = trimmed.shares
    return result


def hash_file(path: Path, settings: Settings, *, dihedral: bool = False) -> MediaHashes:
    """Hash a file under the settings' limits: a video is streamed from disk (never read
    whole into memory) and sampled at ``video_sample_fps``; anything else is read and hashed
    with :func:`hash_media`. Raises MediaTooLargeError past the size limits."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        media_type = sniff(fh.read(HEAD_BYTES))
    if media_type == "video":
        if size > settings.video_max_file_bytes:
            raise MediaTooLargeError(
                f"{size:,} bytes is over video_max_file_bytes ({settings.video_max_file_bytes:,})",
                hint="raise AMPARO_VIDEO_MAX_FILE_BYTES to hash larger videos",
            )
        return hash_video_media(
            path, sample_fps=settings.video_sample_fps, limits=video_limits(settings)
        )
    if size > settings.max_file_bytes:
        raise MediaTooLargeError(
            f"{size:,} bytes is over max_file_bytes ({settings.max_file_bytes:,})",
            hint="raise AMPARO_MAX_FILE_BYTES to hash larger files",
        )
    return hash_bytes(path.read_bytes(), settings, dihedral=dihedral)


def hash_bytes(data: bytes, settings: Settings, *, dihedral: bool = False) -> MediaHashes:
    """Hash media bytes under the settings' limits: a video's vPDQ sampled at
    ``video_sample_fps``, anything else with :func:`hash_media`. The video limits (and with
    them PyAV) are loaded only for a video."""
    if sniff(data[:HEAD_BYTES]) == "video":
        return hash_video_media(
            data, sample_fps=settings.video_sample_fps, limits=video_limits(settings)
        )
    return hash_media(
        data,
        max_pixels=settings.max_image_pixels,
        dihedral=dihedral,
        max_memory=settings.max_decode_memory,
        mirror=settings.match_mirrored,
        trim=settings.trim_borders,
    )


def hash_video_media(
    source: VideoSource,
    *,
    sample_fps: float = DEFAULTS.video_sample_fps,
    limits: VideoLimits | None = None,
    threads: int = 1,
    digests: FileDigests | None = None,
) -> MediaHashes:
    """Hash a video (a path, bytes or a seekable binary file, streamed from disk when a
    path): digests and vPDQ sampled at ``sample_fps`` frames a second. Decoding problems
    (corrupt, unsupported, over a limit) are recorded in ``error``; digests are still valid."""
    from amparo.media.video import VideoLimits
    from amparo.signals.vpdq import hash_video

    digests = digests or digest_source(source)
    frame = (limits or VideoLimits()).max_pixels
    try:
        # Reserve the largest frame the limits let through from the process's decode budget,
        # so concurrent video and image decodes share one memory bound.
        with DECODE_BUDGET.reserve(int(frame * VIDEO_BYTES_PER_PIXEL * VIDEO_FRAME_COPIES)):
            hashed = hash_video(
                source, sample_fps=sample_fps, limits=limits, threads=threads, digests=digests
            )
    except MediaError as exc:
        result = hashes_from_digests(digests, "video")
        result.error = exc.message
        return result
    result = hashes_from_digests(hashed.digests, "video")
    info = hashed.info
    result.vpdq = hashed.vpdq.to_compact()
    result.video = {
        "duration_seconds": info.duration_seconds,
        "frames": len(hashed.vpdq.frames),
        "cropped_frames": len(hashed.vpdq.cropped),
        "width": info.width,
        "height": info.height,
        "frame_rate": info.frame_rate,
        "sample_fps": sample_fps,
    }
    return result


def hashes_from_digests(digests: FileDigests, media_type: str | None) -> MediaHashes:
    """The hashes of content that is digested only (no perceptual hash)."""
    return MediaHashes(
        size=digests.size,
        md5=digests.md5,
        sha1=digests.sha1,
        sha256=digests.sha256,
        media_type=media_type,
    )
