"""Safe image decoding: magic-byte sniffing, size and memory limits, EXIF orientation, alpha
flattening, and DCT-domain reduced decoding of large JPEGs (where most of the hashing time goes).

Memory: before any pixel is decoded, the peak memory of the whole decode (the decoder's own
buffers, the decoded image in Pillow's storage mode, the output array, a transposed copy) is
estimated from the dimensions and mode the header declares. A decode over ``max_memory`` is
refused; one under it reserves its estimate from a process-wide :class:`DecodeBudget`, so
concurrent decodes (API uploads, URL fetches, scans, bank adds) wait instead of multiplying
memory. Conversions run in horizontal strips, so mode conversion and alpha flattening cost a
few MiB, not another full copy."""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import ExifTags, Image, UnidentifiedImageError

from amparo.errors import (
    CorruptMediaError,
    MediaTooLargeError,
    UnsupportedMediaError,
)
from amparo.media.sniff import HEAD_BYTES, IMAGE_TYPES, sniff

# PDQ downsamples everything to 64x64 through a Jarosz filter; decoding JPEGs at a DCT scale
# that keeps the short side at or above this keeps hashes within a few bits of a full decode
# (measured in docs/benchmarks.md). 540 rather than 512: a 1920x1080 JPEG decodes at 1/2
# scale with no further resize, and no side lands on 512, where pdqhash's column-wise filter
# runs at half speed.
PDQ_MIN_SIDE = 540
DEFAULT_MAX_PIXELS = 178_956_970
MAX_SIDE = 65_500
DEFAULT_MAX_DECODE_MEMORY = 512 * 1024 * 1024

# Bytes per pixel of Pillow's in-memory storage: every multi-band mode (and I, F) takes 4.
_STORAGE_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# Full-size copies a format's decoder makes on top of the image itself (Pillow's BMP RLE
# decoder builds the image in a bytearray then bytes; WebP decodes into libwebp's buffer,
# then copies; libtiff may read a whole-image strip into its own buffer).
_DECODER_COPIES = {"bmp": 2, "webp": 2, "tiff": 1}
_STRIP_BYTES = 4 * 1024 * 1024
"""Target size of one strip of a strip-wise conversion (in the widest intermediate mode)."""
_STRIP_COPIES = 6
"""A strip's intermediate copies (crop, RGBA, white background, composite, RGB, output)."""

PixelMode = Literal["RGB", "L"]
_StripConvert = Callable[[Image.Image], NDArray[np.uint8]]

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


class DecodeBudget:
    """A process-wide semaphore counted in bytes: a decode reserves its estimated peak memory
    and waits while the decodes already running hold too much of ``capacity``. One decode
    always runs, however large (a decode over the caller's limit is refused before it gets
    here), so the budget never deadlocks."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self.running = 0
        self.waiting = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int, *, capacity: int | None = None) -> Iterator[None]:
        """Hold ``nbytes`` for the duration of the block. ``capacity``: the caller's limit,
        which replaces the budget's (one process has one ``max_decode_memory``)."""
        with self._cond:
            if capacity is not None:
                self.capacity = capacity
            self.waiting += 1
            self._cond.notify_all()
            try:
                while self.running and self.in_use + nbytes > self.capacity:
                    self._cond.wait()
            finally:
                self.waiting -= 1
            self.in_use += nbytes
            self.running += 1
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= nbytes
                self.running -= 1
                self._cond.notify_all()

    def wait_for(self, predicate: str, timeout: float = 30.0) -> bool:
        """Wait until ``predicate`` (an attribute: ``waiting``, ``running``) is non-zero; for
        tests and diagnostics."""
        with self._cond:
            return bool(self._cond.wait_for(lambda: getattr(self, predicate) > 0, timeout))


DECODE_BUDGET = DecodeBudget(DEFAULT_MAX_DECODE_MEMORY)
"""The one budget every decode in this process goes through."""


def decode_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    mode: PixelMode = "RGB",
    min_side: int = PDQ_MIN_SIDE,
    max_memory: int = DEFAULT_MAX_DECODE_MEMORY,
    budget: DecodeBudget | None = None,
) -> DecodedImage:
    """Decode image bytes safely for hashing.

    Large JPEGs are decoded at the smallest DCT scale (1/2, 1/4, 1/8) whose short side stays
    at or above ``min_side``; other formats are decoded in full. ``mode="L"`` returns luma
    (ITU-R 601: 0.299 R + 0.587 G + 0.114 B, what PDQ hashes), read straight from a JPEG's
    Y channel without colour conversion.

    ``max_memory`` bounds the decode's estimated peak memory (see the module docstring);
    ``budget`` is the process-wide :data:`DECODE_BUDGET` unless a test injects its own.

    Raises UnsupportedMediaError (not an image Amparo decodes), MediaTooLargeError (bomb,
    absurd dimensions, over ``max_memory``) or CorruptMediaError (truncated or damaged).
    """
    media_type = sniff(data[:HEAD_BYTES])
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
            bands = len(image.getbands())  # a JPEG's components, before draft() picks luma
            if media_type == "jpeg":
                _draft(image, mode, min_side)
            need = decode_memory(
                image,
                media_type,
                mode,
                transposed=_orientation(image) > 1,
                full=(width, height, bands),
            )
            _check_memory(need, max_memory, width, height, image.mode)
            with (budget or DECODE_BUDGET).reserve(need, capacity=max_memory):
                image.load()
                # Read again once loaded: Pillow's TIFF loader turns the image itself.
                pixels = _transpose(_to_array(image, mode), _orientation(image))
                image.close()
                del image
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


def decode_memory(
    image: Image.Image,
    media_type: str,
    mode: PixelMode,
    *,
    transposed: bool = False,
    full: tuple[int, int, int] | None = None,
) -> int:
    """Estimated peak bytes of decoding an opened (not loaded) image to ``mode`` pixels: the
    image in Pillow's storage mode, the decoder's extra copies, the output array and the
    strips of the conversion; when an EXIF orientation turns the image, a turned copy of the
    output (or of the image: Pillow's TIFF loader turns the image itself). A progressive
    JPEG adds libjpeg's coefficient buffer: 2 bytes a sample of the ``full`` size, whatever
    the DCT scale of the decode (``full``: width, height, components before ``draft()``)."""
    width, height = image.size  # after draft(): the reduced size a JPEG will decode at
    pixels = width * height
    native = pixels * _STORAGE_BYTES.get(image.mode, 4)
    native *= 1 + _DECODER_COPIES.get(media_type, 0)
    output = pixels * (3 if mode == "RGB" else 1)
    turned = max(output, pixels * _STORAGE_BYTES.get(image.mode, 4)) if transposed else 0
    strips = _STRIP_COPIES * min(_STRIP_BYTES, pixels * 4)
    coefficients = 0
    if media_type == "jpeg" and image.info.get("progressive"):
        full_width, full_height, bands = full or (*image.size, len(image.getbands()))
        coefficients = full_width * full_height * 2 * bands
    return native + output + turned + strips + coefficients


def _check_memory(need: int, max_memory: int, width: int, height: int, pil_mode: str) -> None:
    if need > max_memory:
        raise MediaTooLargeError(
            f"decoding this {width}x{height} {pil_mode} image needs about "
            f"{need / 2**20:,.0f} MiB, over max_decode_memory ({max_memory / 2**20:,.0f} MiB)",
            hint="raise AMPARO_MAX_DECODE_MEMORY if such images are legitimate here",
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


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8) of an opened image; 1 when absent or invalid."""
    try:
        # Image.getexif, not the PNG plugin's override: that one loads (decodes) the whole
        # image to look for an eXIf chunk after the pixel data. Orientation is read from the
        # chunks before the pixels, as browsers do.
        value = Image.Image.getexif(image).get(ExifTags.Base.Orientation)
    except Exception:  # a damaged EXIF block is ignored, as exif_transpose does
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _transpose(pixels: NDArray[np.uint8], orientation: int) -> NDArray[np.uint8]:
    """Apply an EXIF orientation to decoded pixels (as ``ImageOps.exif_transpose``)."""
    if orientation <= 1:
        return pixels
    turned = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 1)[:, ::-1],
        8: lambda a: np.rot90(a, 1),
    }[orientation](pixels)
    return np.ascontiguousarray(turned)


def _to_array(image: Image.Image, mode: PixelMode) -> NDArray[np.uint8]:
    """Convert a loaded image to ``mode`` pixels strip by strip: the pixel conversions are
    pointwise, so converting strips gives the same pixels as converting the whole image,
    without a second full-size copy per step."""
    width, height = image.size
    shape = (height, width, 3) if mode == "RGB" else (height, width)
    out = np.empty(shape, dtype=np.uint8)
    rows = max(1, _STRIP_BYTES // max(1, width * 4))
    convert = _strip_converter(image, mode)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        out[top:bottom] = convert(image.crop((0, top, width, bottom)))
    return out


def _strip_converter(image: Image.Image, mode: PixelMode) -> _StripConvert:
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    ):
        return lambda strip: _finish(_flatten(strip), mode)
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        top = _sixteen_bit_top(image)
        return lambda strip: _finish(_sixteen_bit_to_l(strip, top), mode)
    return lambda strip: _finish(strip, mode)


def _flatten(strip: Image.Image) -> Image.Image:
    rgba = strip.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _finish(strip: Image.Image, mode: PixelMode) -> NDArray[np.uint8]:
    if strip.mode == mode:
        return np.asarray(strip, dtype=np.uint8)
    if mode == "L" and strip.mode not in ("RGB", "1", "P"):
        # CMYK, YCbCr, LAB, ...: Pillow converts those to L only through RGB.
        strip = strip.convert("RGB")
    return np.asarray(strip.convert(mode), dtype=np.uint8)


def _sixteen_bit_top(image: Image.Image) -> float:
    """The largest value of a 16-bit (or 32-bit integer or float) greyscale image."""
    extrema = image.getextrema()
    top = extrema[1] if isinstance(extrema, tuple) and len(extrema) == 2 else 0
    return float(top) if isinstance(top, (int, float)) else 0.0


def _sixteen_bit_to_l(strip: Image.Image, top: float) -> Image.Image:
    """Scale 16-bit (and 32-bit integer or float) greyscale to 8 bits instead of clipping,
    by the whole image's top value."""
    values = np.asarray(strip.convert("F") if strip.mode == "F" else strip.convert("I"))
    if top > 255:
        values = values * (255.0 / 65535.0 if top <= 65535 else 255.0 / top)
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
