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
