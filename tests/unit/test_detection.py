"""A transformed copy of a known photo is found; an unrelated photo is not.

The originals are added to a bank as a curator adds media (``BankService.add_media``, which
also stores crop variants of each photo) and the copies are looked up as any content is
(``Checks.hash_bytes`` + ``match_hashes``): the real pipeline, on SQLite.

Benign photos only: scikit-image's bundled samples.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from amparo import Amparo, BankInfo
from amparo.config import load_settings
from amparo.hashing import hash_media
from amparo.signals.pdq import DEFAULT_THRESHOLD, PdqSignal
from media_support import SAMPLE_PHOTOS, jpeg_bytes, png_bytes, sample_photo

data = pytest.importorskip("skimage.data")

PHOTOS = SAMPLE_PHOTOS
_photo, _png, _jpeg = sample_photo, png_bytes, jpeg_bytes


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
    # does not survive much more (rocket and stereo_motorcycle: 34 and 32 bits): the bank's
    # crop variants of the original catch it.
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


@pytest.fixture(scope="module")
def amparo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Amparo]:
    home: Path = tmp_path_factory.mktemp("detection") / "home"
    app = Amparo(load_settings(env={}, overrides={"home": home}))
    yield app
    app.close()


@pytest.fixture(scope="module")
def known(amparo: Amparo) -> dict[str, int]:
    """Photo name -> the id of its PDQ entry in the bank ``known``."""
    amparo.banks.create(BankInfo(name="known"))
    ids = {}
    for name in PHOTOS:
        _, report = amparo.banks.add_media("known", _png(_photo(name)), source_id=name)
        assert "pdq" in report.signals, report.not_added
        ids[name] = amparo.banks.entry_ids("known", report.signals.items())["pdq"]
    return ids


CASES = [
    pytest.param(name, transform, id=f"{name}-{transform}")
    for name in PHOTOS
    for transform in sorted(TRANSFORMS)
]


@pytest.mark.parametrize(("name", "transform"), CASES)
def test_transformed_copy_matches_its_original(
    amparo: Amparo, known: dict[str, int], name: str, transform: str
) -> None:
    hashes = amparo.checks.hash_bytes(TRANSFORMS[transform](_photo(name)))
    (result,) = amparo.checks.match_hashes([hashes])
    found = {(m.entry_id, m.signal_type) for m in result.matches}
    assert (known[name], "pdq") in found, f"{name} {transform}: {result.matches}"
    # Never another photo's entry (nor one of its variants).
    assert {entry_id for entry_id, _ in found} <= {known[name]}, result.matches


def test_crop_variants_find_what_plain_pdq_misses(
    amparo: Amparo, known: dict[str, int], originals: dict[str, str]
) -> None:
    """The two crops plain PDQ misses (34 and 32 bits) match a stored variant."""
    for name in ("rocket", "stereo_motorcycle"):
        hashes = amparo.checks.hash_bytes(_crop_five_percent(_photo(name)))
        assert hashes.pdq is not None
        assert PdqSignal.distance(hashes.pdq, originals[name]) > DEFAULT_THRESHOLD
        (result,) = amparo.checks.match_hashes([hashes])
        (match,) = [m for m in result.matches if m.signal_type == "pdq"]
        assert (match.entry_id, match.path) == (known[name], "variant")
        assert match.variant is not None and match.variant.startswith("crop")


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
