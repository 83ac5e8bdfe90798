"""Safe image decoding: magic-byte sniffing, size limits, EXIF orientation, alpha flattening,
and DCT-domain reduced decoding of large JPEGs (where most of the hashing time goes)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

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
) -> DecodedImage:
    """Decode image bytes safely for hashing.

    Large JPEGs are decoded at the smallest DCT scale (1/2, 1/4, 1/8) whose short side stays
    at or above ``min_side``; other formats are decoded in full. ``mode="L"`` returns luma
    (ITU-R 601: 0.299 R + 0.587 G + 0.114 B, what PDQ hashes), read straight from a JPEG's
    Y channel without colour conversion.

    Raises UnsupportedMediaError (not an image Amparo decodes), MediaTooLargeError (bomb,
    absurd dimensions) or CorruptMediaError (truncated or damaged).
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


def _to_array(image: Image.Image, mode: PixelMode) -> NDArray[np.uint8]:
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    elif image.mode.startswith("I;16") or image.mode in ("I", "F"):
        image = _sixteen_bit_to_l(image)
    if image.mode == mode:
        return np.asarray(image, dtype=np.uint8)
    if mode == "L" and image.mode not in ("RGB", "1", "P"):
        # CMYK, YCbCr, LAB, ...: Pillow converts those to L only through RGB.
        image = image.convert("RGB")
    return np.asarray(image.convert(mode), dtype=np.uint8)


def _sixteen_bit_to_l(image: Image.Image) -> Image.Image:
    """Scale 16-bit (and 32-bit integer or float) greyscale to 8 bits instead of clipping."""
    values = np.asarray(image.convert("F") if image.mode == "F" else image.convert("I"))
    top = float(values.max()) if values.size else 0.0
    if top > 255:
        values = values * (255.0 / 65535.0 if top <= 65535 else 255.0 / top)
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
