"""What a reviewer's browser is sent of a case item's media.

By default a *shielded* rendition made on the server: greyscale, downscaled and heavily blurred,
so the clear image never reaches the browser unless the reviewer deliberately reveals it. The
*clear* rendition (served only for ``review_reveal_seconds`` after a logged reveal) is
re-encoded too: size-capped, metadata (EXIF, GPS) stripped, always JPEG. A video's shielded
rendition is such a picture of one of its frames (so no video reaches the browser unless
revealed); revealed, the video itself is sent and the page plays it muted.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageFilter

from amparo.errors import CorruptMediaError
from amparo.media.decode import DEFAULT_MAX_DECODE_MEMORY, decode_image

SHIELD_SIDE = 480
"""Longest side of the shielded rendition, in pixels."""
CLEAR_SIDE = 1280
"""Longest side of the clear rendition, in pixels."""
BLUR_FRACTION = 0.06
"""Gaussian blur radius as a share of the rendition's longest side (strong: shapes only)."""


@dataclass(frozen=True)
class Rendition:
    data: bytes
    mime: str


def shielded(
    data: bytes, *, max_pixels: int, max_memory: int = DEFAULT_MAX_DECODE_MEMORY
) -> Rendition:
    """A greyscale, blurred JPEG of an image: enough to see that there is a picture and its
    rough layout, not what it shows."""
    decoded = _decoded(data, max_pixels=max_pixels, max_memory=max_memory, side=SHIELD_SIDE)
    return _shield(decoded.convert("L"))


def _shield(image: Image.Image) -> Rendition:
    image.thumbnail((SHIELD_SIDE, SHIELD_SIDE), Image.Resampling.LANCZOS)
    # Pixelate first (averages away fine detail a blur alone might leave), then blur.
    small = image.resize(
        (max(1, image.width // 12), max(1, image.height // 12)), Image.Resampling.BOX
    )
    image = small.resize(image.size, Image.Resampling.BILINEAR)
    radius = max(4.0, BLUR_FRACTION * max(image.size))
    image = image.filter(ImageFilter.GaussianBlur(radius))
    return Rendition(_jpeg(image, quality=70), "image/jpeg")


def shielded_video(data: bytes, *, max_pixels: int) -> Rendition:
    """A greyscale, blurred JPEG of a frame about a second into a video (its first frame when
    shorter), made like :func:`shielded`; the video itself is not sent."""
    from amparo.media.video import VideoLimits, open_video

    chosen = None
    # Frames no larger than 8K (the hashing limit), not max_image_pixels: a frame in flight
    # costs several copies of its pixels in the decoder (see amparo.hashing.video_limits).
    with open_video(
        data, limits=VideoLimits(max_pixels=min(max_pixels, VideoLimits.max_pixels))
    ) as video:
        for number, frame in enumerate(video.frames(sample_fps=1.0, max_short_side=SHIELD_SIDE)):
            chosen = frame.luma
            if number >= 1:
                break
    if chosen is None:
        raise CorruptMediaError("the video has no frame to show")
    return _shield(Image.fromarray(chosen, mode="L"))


def clear(
    data: bytes, *, max_pixels: int, max_memory: int = DEFAULT_MAX_DECODE_MEMORY
) -> Rendition:
    """The image as it is (colour), capped at ``CLEAR_SIDE`` and stripped of metadata."""
    image = _decoded(data, max_pixels=max_pixels, max_memory=max_memory, side=CLEAR_SIDE)
    return Rendition(_jpeg(image, quality=88), "image/jpeg")


def video_mime(data: bytes) -> str:
    """The type to serve a video as (browsers sniff the container themselves)."""
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm"
    return "video/mp4"


def _decoded(data: bytes, *, max_pixels: int, max_memory: int, side: int) -> Image.Image:
    decoded = decode_image(
        data, max_pixels=max_pixels, mode="RGB", min_side=side, max_memory=max_memory
    )
    image = Image.fromarray(decoded.pixels)
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return image


def _jpeg(image: Image.Image, *, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()
