"""Benign media the tests make: synthetic JPEGs of random colour blocks, and zip archives of
them. One place, so every test file builds them the same way."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image


def synthetic_jpeg(
    seed: int,
    size: int = 256,
    quality: int = 90,
    resample: Image.Resampling = Image.Resampling.BICUBIC,
) -> bytes:
    """A ``size`` x ``size`` JPEG of 8 x 8 random colour blocks, smoothed: a different,
    photo-like PDQ for every seed (unrelated seeds land ~128 bits apart)."""
    rng = np.random.default_rng(seed)
    blocks = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(blocks).resize((size, size), resample).save(out, "JPEG", quality=quality)
    return out.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A deflated zip archive holding ``members`` (name -> bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


SAMPLE_PHOTOS = (
    "astronaut",
    "camera",
    "chelsea",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "retina",
    "rocket",
    "stereo_motorcycle",
)
"""scikit-image's bundled photos the detection tests use (benign; tests importing
:func:`sample_photo` skip when scikit-image is absent: ``pytest.importorskip``)."""


def sample_photo(name: str) -> Image.Image:
    """One of scikit-image's bundled sample photos, as RGB."""
    from skimage import data

    pixels = getattr(data, name)()
    if isinstance(pixels, tuple):  # stereo_motorcycle: (left, right, disparity)
        pixels = pixels[0]
    return Image.fromarray(np.asarray(pixels)).convert("RGB")


def png_bytes(image: Image.Image) -> bytes:
    """``image`` as PNG."""
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    """``image`` as JPEG at ``quality``."""
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()
