"""Safe image decoding: magic-byte sniffing, size limits, EXIF orientation, alpha flattening,
and DCT-domain reduced decoding of large JPEGs (where most of the hashing time goes)."""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from amparo.errors import (
    CorruptMediaError,
    MediaTooLargeError,
    UnsupportedMediaError,
)
from amparo.media.sniff import IMAGE_TYPES, sniff

# PDQ downsamples everything to 64x64 through a Jarosz filter; decoding JPEGs at a DCT scale
# that keeps the short side at or above this keeps hashes within a few bits of a full decode
# (measured in docs/benchmarks.md). 540 rather than 512: a 1920x1080 JPEG decodes at 1/2
# scale with no further resize, and no side lands on 512, where pdqhash's column-wise filter
# runs at half speed.
PDQ_MIN_SIDE = 540
DEFAULT_MAX_PIXELS = 178_956_970
DEFAULT_MAX_DECODE_MEMORY = 512 * 1024 * 1024
MAX_SIDE = 65_500

PixelMode = Literal["RGB", "L"]

# Pillow's own bomb check is a warning below 2x its limit; Amparo enforces its own limit.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class DecodedImage:
    pixels: NDArray[np.uint8]
    """``(h, w, 3)`` RGB or, when decoded with ``mode="L"``, ``(h, w)`` luma; uint8,
    orientation applied, alpha flattened on white."""
    media_type: str
    width: int
    """Full-resolution width (before any reduced decode)."""
    height: int


def decode_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    mode: PixelMode = "RGB",
    min_side: int = PDQ_MIN_SIDE,
    max_memory: int = DEFAULT_MAX_DECODE_MEMORY,
) -> DecodedImage:
    """Decode image bytes safely for hashing.

    Large JPEGs are decoded at the smallest DCT scale (1/2, 1/4, 1/8) whose short side stays
    at or above ``min_side``; other formats are decoded in full. ``mode="L"`` returns luma
    (ITU-R 601: 0.299 R + 0.587 G + 0.114 B, what PDQ hashes), read straight from a JPEG's
    Y channel without colour conversion.

    Memory is bounded before anything is decoded: the peak a decode of this image would take
    (:func:`decode_memory`, from the dimensions after any DCT reduction and the decoded mode)
    is reserved from the process's :class:`DecodeBudget` of ``max_memory`` bytes, so neither
    one image nor many at once take more (a small PNG can claim 169 megapixels of RGBA, ~4 GB).

    Raises UnsupportedMediaError (not an image Amparo decodes), MediaTooLargeError (bomb,
    absurd dimensions, over ``max_memory``) or CorruptMediaError (truncated or damaged).
    """
    media_type = sniff(data[:512])
    if media_type not in IMAGE_TYPES:
        raise UnsupportedMediaError(
            "not a supported image (JPEG, PNG, GIF, WebP, BMP, TIFF)",
            hint="the type is recognised by content, not by the file name",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            _check_dimensions(width, height, max_pixels)
            if media_type == "jpeg":
                _draft(image, mode, min_side)
            need = decode_memory(*image.size, image.mode, media_type, mode)
            with decode_budget(max_memory).reserve(need):
                image.load()
                pixels = _to_array(image, mode)
    except (MediaTooLargeError, CorruptMediaError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaTooLargeError(f"refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise CorruptMediaError(f"the {media_type} data cannot be decoded") from None
    except (OSError, SyntaxError, ValueError, IndexError, EOFError) as exc:
        raise CorruptMediaError(f"damaged or truncated {media_type}: {exc}") from None
    except MemoryError:
        raise MediaTooLargeError("the image needs more memory than is available") from None
    return DecodedImage(pixels=pixels, media_type=media_type, width=width, height=height)


def _check_dimensions(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise CorruptMediaError(f"image claims impossible dimensions {width}x{height}")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > max_pixels:
        raise MediaTooLargeError(
            f"image claims {width}x{height} pixels, over the limit of {max_pixels:,}",
            hint="raise max_image_pixels if such images are legitimate here",
        )


def _draft(image: Image.Image, mode: PixelMode, min_side: int) -> None:
    """Ask the JPEG decoder for the smallest DCT scale whose short side stays >= min_side.

    With ``mode="L"`` a YCbCr JPEG is decoded to its Y channel only (no chroma upsampling or
    colour conversion), which is the luma PDQ wants; CMYK and other JPEGs keep their mode.
    """
    width, height = image.size
    short = min(width, height)
    if short < min_side * 2:
        if mode == "L":
            image.draft("L", None)
        return
    scale = min_side / short
    image.draft(mode, (max(1, int(width * scale + 0.999)), max(1, int(height * scale + 0.999))))


_STRIP_ROWS = 256
"""Rows converted at a time: conversions (alpha flattening, colour to luma, 16 to 8 bits) work
on strips, so their temporaries are a strip's size, not the image's."""

# Bytes a pixel that Pillow keeps for a loaded image of each mode (multi-band modes, and 32-bit
# ones, take four bytes a pixel).
_STORED_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
_OVERHEAD_BYTES = 1
"""Per pixel, on top of the loaded image and the result: the orientation copy and what PDQ's
preprocessing reads (measured: tests/unit/test_decode_memory.py)."""
_DECODER_BUFFER = {"webp": 10}
"""Decoders that hold a second full-size buffer while decoding (libwebp decodes to RGBA)."""


def decode_memory(width: int, height: int, mode: str, media_type: str, out: PixelMode) -> int:
    """Upper bound (bytes) of the memory a decode of this image to ``out`` takes at its peak:
    the loaded image, the result, the orientation copy and the strip temporaries."""
    pixels = width * height
    stored = _STORED_BYTES.get(mode, 4)
    result = 1 if out == "L" else 3
    per_pixel = stored + 2 * result + _OVERHEAD_BYTES + _DECODER_BUFFER.get(media_type, 0)
    strip = width * _STRIP_ROWS * 32
    return pixels * per_pixel + strip


class DecodeBudget:
    """The decode memory of one process: each decode reserves its :func:`decode_memory` and
    waits while others hold what it needs, so concurrent decodes (API threads, a scan
    worker) never together take more than ``capacity`` bytes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self._free = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        if nbytes > self.capacity:
            raise MediaTooLargeError(
                f"decoding this image needs about {nbytes / 2**20:,.0f} MiB, over "
                f"max_decode_memory ({self.capacity / 2**20:,.0f} MiB)",
                hint="raise AMPARO_MAX_DECODE_MEMORY if such images are legitimate here",
            )
        with self._free:
            self._free.wait_for(lambda: self.in_use + nbytes <= self.capacity)
            self.in_use += nbytes
        try:
            yield
        finally:
            with self._free:
                self.in_use -= nbytes
                self._free.notify_all()


_budgets: dict[int, DecodeBudget] = {}
_budgets_lock = threading.Lock()


def decode_budget(capacity: int) -> DecodeBudget:
    """This process's budget for ``capacity`` (one per configured limit, shared by threads)."""
    with _budgets_lock:
        budget = _budgets.get(capacity)
        if budget is None:
            budget = _budgets[capacity] = DecodeBudget(capacity)
        return budget


def _to_array(image: Image.Image, mode: PixelMode) -> NDArray[np.uint8]:
    width, height = image.size
    out = np.empty((height, width) if mode == "L" else (height, width, 3), dtype=np.uint8)
    scale = _sixteen_bit_scale(image)
    for top in range(0, height, _STRIP_ROWS):
        bottom = min(height, top + _STRIP_ROWS)
        out[top:bottom] = _convert(image.crop((0, top, width, bottom)), mode, scale)
    return _oriented(out, image.getexif().get(_ORIENTATION, 1))


def _convert(image: Image.Image, mode: PixelMode, scale: float | None) -> NDArray[np.uint8]:
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    elif scale is not None:
        image = _sixteen_bit_to_l(image, scale)
    if image.mode == mode:
        return np.asarray(image, dtype=np.uint8)
    if mode == "L" and image.mode not in ("RGB", "1", "P"):
        # CMYK, YCbCr, LAB, ...: Pillow converts those to L only through RGB.
        image = image.convert("RGB")
    return np.asarray(image.convert(mode), dtype=np.uint8)


_ORIENTATION = 0x0112


def _oriented(pixels: NDArray[np.uint8], orientation: object) -> NDArray[np.uint8]:
    """Apply an EXIF orientation (as ``ImageOps.exif_transpose`` would) to decoded pixels."""
    turned = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }.get(orientation if isinstance(orientation, int) else 1)
    if turned is None:
        return pixels
    return np.ascontiguousarray(turned(pixels))


def _sixteen_bit_scale(image: Image.Image) -> float | None:
    """For 16-bit (and 32-bit integer or float) greyscale: the factor to 8 bits, from the
    whole image's maximum (None for other modes)."""
    if not (image.mode.startswith("I;16") or image.mode in ("I", "F")):
        return None
    extrema = image.getextrema()
    top = float(extrema[1]) if isinstance(extrema[1], int | float) else 0.0
    if top <= 255:
        return 1.0
    return 255.0 / 65535.0 if top <= 65535 else 255.0 / top


def _sixteen_bit_to_l(image: Image.Image, scale: float) -> Image.Image:
    """Scale 16-bit (and 32-bit integer or float) greyscale to 8 bits instead of clipping."""
    values = np.asarray(image.convert("F") if image.mode == "F" else image.convert("I"))
    if scale != 1.0:
        values = values * scale
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
