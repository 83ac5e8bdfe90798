"""Borders, pads and caption bars are trimmed before a second PDQ; mirrored PDQ comes free.

Benign photos only: scikit-image's bundled samples, and synthetic images.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from amparo.config import Settings
from amparo.hashing import MediaHashes, hash_bytes, hash_media
from amparo.media.borders import detect_borders
from amparo.media.decode import decode_image
from amparo.media.trim import TRIM_EXACT_LINE_SHARE, TRIM_EXACT_TOLERANCE, TRIM_MIN_KEEP, find_trim
from amparo.signals.pdq import (
    DEFAULT_THRESHOLD,
    MIRROR_INDEX,
    PdqSignal,
    canonical_luma,
    pdq_dihedral_from_pixels,
    pdq_from_pixels,
    pdq_trimmed_from_pixels,
)
from media_support import SAMPLE_PHOTOS, jpeg_bytes, png_bytes, sample_photo

data = pytest.importorskip("skimage.data")

PHOTOS = SAMPLE_PHOTOS
_photo, _png, _jpeg = sample_photo, png_bytes, jpeg_bytes


def _pad(image: Image.Image, colour: tuple[int, int, int], share: float = 0.08) -> Image.Image:
    dx, dy = round(image.width * share), round(image.height * share)
    out = Image.new("RGB", (image.width + 2 * dx, image.height + 2 * dy), colour)
    out.paste(image, (dx, dy))
    return out


def _caption(image: Image.Image, where: str) -> Image.Image:
    """A white bar, 10% of the height, with black text on it, above or below the picture."""
    bar = round(image.height * 0.10)
    out = Image.new("RGB", (image.width, image.height + bar), (255, 255, 255))
    out.paste(image, (0, bar if where == "top" else 0))
    top = 0 if where == "top" else image.height
    font = ImageFont.load_default(size=max(10, bar // 2))
    ImageDraw.Draw(out).text(
        (image.width * 0.05, top + bar * 0.2), "shared by @someone lol", fill=(0, 0, 0), font=font
    )
    return out


TRANSFORMS: dict[str, Callable[[Image.Image], bytes]] = {
    "black-pad": lambda im: _jpeg(_pad(im, (0, 0, 0))),
    "white-pad": lambda im: _jpeg(_pad(im, (255, 255, 255))),
    "red-border": lambda im: _jpeg(_pad(im, (200, 30, 30))),
    "black-pad-q30": lambda im: _jpeg(_pad(im, (0, 0, 0)), 30),
    "white-pad-q30": lambda im: _jpeg(_pad(im, (255, 255, 255)), 30),
    "caption-top": lambda im: _jpeg(_caption(im, "top")),
    "caption-bottom": lambda im: _jpeg(_caption(im, "bottom")),
}

# A black pad around a picture whose own edges are black (deep space, a fundus photo's dark
# surround) makes no visible edge: nothing tells the pad from the picture. Kept visible.
INVISIBLE_PAD: set[tuple[str, str]] = set()
"""Frames no trim finds (none since exact pads are cut without a step: a black pad on the
dark-edged hubble_deep_field and retina photos was missed before)."""


@pytest.fixture(scope="module")
def originals() -> dict[str, MediaHashes]:
    return {name: hash_media(_png(_photo(name))) for name in PHOTOS}


@pytest.fixture(scope="module")
def framed() -> dict[tuple[str, str], MediaHashes]:
    return {
        (name, transform): hash_media(make(_photo(name)))
        for name in PHOTOS
        for transform, make in TRANSFORMS.items()
    }


CASES = [
    pytest.param(
        name,
        transform,
        marks=[pytest.mark.xfail(reason="a black pad on a black picture", strict=True)]
        if (name, transform) in INVISIBLE_PAD
        else [],
        id=f"{name}-{transform}",
    )
    for name in PHOTOS
    for transform in TRANSFORMS
]


def _distance(a: str | None, b: str | None) -> int:
    assert a is not None and b is not None
    return PdqSignal.distance(a, b)


@pytest.mark.parametrize(("name", "transform"), CASES)
def test_framed_copy_is_trimmed_back_to_its_original(
    originals: dict[str, MediaHashes],
    framed: dict[tuple[str, str], MediaHashes],
    name: str,
    transform: str,
) -> None:
    copy, original = framed[name, transform], originals[name]
    # The frame defeats plain PDQ...
    assert _distance(copy.pdq, original.pdq) > DEFAULT_THRESHOLD
    # ...and trimming it brings the copy back within the threshold.
    assert copy.pdq_trimmed is not None, f"{name} {transform}: nothing trimmed"
    distance = _distance(copy.pdq_trimmed, original.pdq)
    assert distance <= DEFAULT_THRESHOLD, f"{name} {transform}: {distance} bits, {copy.trim}"
    assert copy.trim is not None
    top, bottom, left, right = copy.trim
    if transform.startswith("caption"):
        assert left == right == 0
        assert 0.08 <= max(top, bottom) <= 0.1 and min(top, bottom) == 0
    else:  # 8% of the picture's side a side: 0.08 / 1.16 of the padded side
        assert all(0.06 <= share <= 0.08 for share in copy.trim), copy.trim
    assert copy.pdq_trimmed_mirror is not None


def test_trimming_never_makes_unrelated_photos_match(
    originals: dict[str, MediaHashes], framed: dict[tuple[str, str], MediaHashes]
) -> None:
    hashes: dict[str, set[str]] = {name: set() for name in PHOTOS}
    for result in originals.values():
        assert result.pdq_trimmed is None
    for name, result in originals.items():
        hashes[name].add(str(result.pdq))
    for (name, _), result in framed.items():
        hashes[name].update(h for h in (result.pdq, result.pdq_trimmed) if h is not None)
    for a, b in itertools.combinations(PHOTOS, 2):
        for ha, hb in itertools.product(hashes[a], hashes[b]):
            assert _distance(ha, hb) > DEFAULT_THRESHOLD, (a, b)


def test_plain_photos_and_noise_are_not_trimmed() -> None:
    for name in PHOTOS:
        assert not find_trim(canonical_luma(np.asarray(_photo(name)))), name
        assert hash_media(_jpeg(_photo(name), 50)).pdq_trimmed is None, name
    noise = np.random.default_rng(7).integers(0, 256, (400, 600, 3), dtype=np.uint8)
    assert not find_trim(canonical_luma(noise))
    assert hash_media(_png(Image.fromarray(noise))).pdq_trimmed is None


def _flat(draw: Callable[[ImageDraw.ImageDraw], None]) -> NDArray[np.uint8]:
    image = Image.new("RGB", (600, 400), (240, 240, 240))
    draw(ImageDraw.Draw(image))
    return canonical_luma(np.asarray(image))


@pytest.mark.parametrize(
    "draw",
    [
        pytest.param(lambda d: d.ellipse((250, 150, 350, 250), fill=(30, 80, 120)), id="centre"),
        pytest.param(lambda d: d.rectangle((0, 180, 599, 220), fill=(30, 80, 120)), id="stripe"),
        pytest.param(lambda d: d.rectangle((20, 20, 140, 110), fill=(200, 30, 30)), id="corner"),
        pytest.param(lambda d: d.rectangle((150, 100, 450, 300), fill=(0, 0, 0)), id="box"),
    ],
)
def test_mostly_flat_image_is_never_trimmed_to_nothing(
    draw: Callable[[ImageDraw.ImageDraw], None],
) -> None:
    luma = _flat(draw)
    height, width = luma.shape
    borders = find_trim(luma)
    assert borders.top + borders.bottom <= height * (1 - TRIM_MIN_KEEP)
    assert borders.left + borders.right <= width * (1 - TRIM_MIN_KEEP)
    whole = np.full((400, 600), 240, dtype=np.uint8)
    assert not find_trim(whole)


def test_sky_fading_into_the_picture_is_not_a_bar() -> None:
    picture = np.asarray(_photo("chelsea").convert("L"), dtype=np.float64)
    sky = np.linspace(230, 120, 150)[:, None] * np.ones((1, picture.shape[1]))
    assert not find_trim(np.vstack([sky, picture]).astype(np.uint8))
    ramp = np.linspace(0, 255, 500)[:, None] * np.ones((1, 500))
    assert not find_trim(ramp.astype(np.uint8))


def _two_line_caption(image: Image.Image) -> Image.Image:
    bar = round(image.height * 0.15)
    out = Image.new("RGB", (image.width, image.height + bar), (255, 255, 255))
    out.paste(image, (0, bar))
    draw, font = ImageDraw.Draw(out), ImageFont.load_default(size=int(bar * 0.35))
    draw.text((10, bar * 0.08), "WHEN YOU SEE IT", fill=(0, 0, 0), font=font)
    draw.text((10, bar * 0.52), "you will laugh", fill=(0, 0, 0), font=font)
    return out


def _big_font_bar(image: Image.Image) -> Image.Image:
    bar = round(image.height * 0.12)
    out = Image.new("RGB", (image.width, image.height + bar), (255, 255, 255))
    out.paste(image, (0, 0))
    font = ImageFont.load_default(size=int(bar * 0.8))
    ImageDraw.Draw(out).text((10, image.height + bar * 0.1), "BIG TEXT", fill=(0, 0, 0), font=font)
    return out


def _side_watermark(image: Image.Image) -> Image.Image:
    strip = round(image.width * 0.1)
    out = Image.new("RGB", (image.width + strip, image.height), (20, 20, 20))
    out.paste(image, (0, 0))
    draw, font = ImageDraw.Draw(out), ImageFont.load_default(size=strip // 2)
    for y in range(10, image.height - 30, int(strip * 1.2)):
        draw.text((image.width + 4, y), "wm", fill=(230, 230, 230), font=font)
    return out


@pytest.mark.parametrize("name", ["astronaut", "camera", "coffee"])
@pytest.mark.parametrize("frame", [_two_line_caption, _big_font_bar, _side_watermark])
def test_other_bars_are_trimmed(
    originals: dict[str, MediaHashes], name: str, frame: Callable[[Image.Image], Image.Image]
) -> None:
    copy = hash_media(_jpeg(frame(_photo(name))))
    assert _distance(copy.pdq, originals[name].pdq) > DEFAULT_THRESHOLD
    assert _distance(copy.pdq_trimmed, originals[name].pdq) <= 8, copy.trim


@pytest.mark.parametrize("name", ["astronaut", "coffee", "rocket"])
def test_thin_pad_is_trimmed(originals: dict[str, MediaHashes], name: str) -> None:
    # 1.5% a side already moves PDQ past the threshold on these photos (36-44 bits).
    copy = hash_media(_jpeg(_pad(_photo(name), (255, 255, 255), share=0.015)))
    assert _distance(copy.pdq_trimmed, originals[name].pdq) <= 8


def test_thin_band_is_ignored() -> None:
    image = _photo("astronaut")
    thin = _pad(image, (0, 0, 0), share=0.004)
    assert not find_trim(canonical_luma(np.asarray(thin)))


def _luma(data: bytes) -> NDArray[np.uint8]:
    """The luma hashing sees: a JPEG's Y channel, then PDQ's canonical preprocessing."""
    return canonical_luma(decode_image(data, mode="L").pixels)


@pytest.mark.parametrize("box", [(355, 310, 290, 252), (0, 0, 388, 337)])
def test_jpeg_pad_on_a_dark_picture_is_cut_at_its_edge(
    box: tuple[int, int, int, int],
) -> None:
    # Deep space under a black pad makes no visible step, and at q50 the 8x8 block straddling
    # the pad's edge rings: the exact pad run stops on the block boundary, up to 7 lines short
    # on these crops (their PDQ then 20-28 bits off). The cut goes on to the picture's step.
    x, y, width, height = box
    tile = _photo("hubble_deep_field").crop((x, y, x + width, y + height))
    padded = _pad(tile, (0, 0, 0))
    dx, dy = (padded.width - width) // 2, (padded.height - height) // 2
    borders = find_trim(_luma(_jpeg(padded, 50)))
    for found, pad in zip(
        (borders.top, borders.bottom, borders.left, borders.right), (dy, dy, dx, dx), strict=True
    ):
        assert abs(found - pad) <= 1, (borders, dy, dx)
    copy = hash_media(_jpeg(padded, 50))
    assert _distance(copy.pdq_trimmed, hash_media(_png(tile)).pdq) <= 10


def _exact_run(lines: NDArray[np.uint8]) -> int:
    """Lines from the first within ``TRIM_EXACT_TOLERANCE`` of the outermost lines' colour."""
    colour = int(np.median(lines[:2]))
    near = np.abs(lines.astype(np.int16) - colour) <= TRIM_EXACT_TOLERANCE
    return int(np.argmin(near.mean(axis=1) >= TRIM_EXACT_LINE_SHARE))


@pytest.mark.parametrize("quality", [30, 50, 90])
@pytest.mark.parametrize("box", [(0, 0, 470, 470), (282, 0, 282, 282), (0, 940, 470, 470)])
def test_dark_surround_without_pad_is_cut_where_it_stops_being_exact(
    box: tuple[int, int, int, int], quality: int
) -> None:
    # retina's black surround is as flat as a pad, and JPEG makes it exact blocks, so its run
    # often stops on a block boundary too; its rim brightens gradually (no step): the cut is
    # where the exact run ends, not a block further into the picture.
    x, y, width, height = box
    luma = _luma(_jpeg(_photo("retina").crop((x, y, x + width, y + height)), quality))
    borders = find_trim(luma)
    assert borders, box
    inner = luma[borders.top : luma.shape[0] - borders.bottom]
    sides = {
        "top": (borders.top, luma),
        "bottom": (borders.bottom, luma[::-1]),
        "left": (borders.left, inner.T),
        "right": (borders.right, inner.T[::-1]),
    }
    for side, (cut, lines) in sides.items():
        if cut:
            assert cut == _exact_run(lines), (side, borders)


def test_video_border_detection_is_unchanged_by_trimming() -> None:
    # detect_borders keeps its own, stricter rule: a caption bar with text is not a video bar.
    luma = canonical_luma(np.asarray(_caption(_photo("camera"), "bottom")))
    assert find_trim(luma).bottom > 0
    assert detect_borders(luma).bottom == 0


def test_mirror_is_the_pdq_of_the_mirrored_picture(originals: dict[str, MediaHashes]) -> None:
    for name in PHOTOS:
        image = _photo(name)
        mirrored = pdq_from_pixels(np.asarray(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
        upside_down = pdq_from_pixels(np.asarray(image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)))
        mirror = originals[name].pdq_mirror
        # pdqhash's dihedral hashes come from one downsampling that is not exactly symmetric:
        # 0-18 bits from hashing the mirrored picture itself, against 100+ for a wrong one.
        assert _distance(mirror, mirrored.hex) <= 20, name
        assert _distance(mirror, upside_down.hex) > 64, name
        hashes, _ = pdq_dihedral_from_pixels(np.asarray(image))
        assert hashes[MIRROR_INDEX] == mirror


def test_hash_media_options_and_json(framed: dict[tuple[str, str], MediaHashes]) -> None:
    photo = _png(_pad(_photo("chelsea"), (255, 255, 255)))
    bare = hash_media(photo, mirror=False, trim=False)
    assert bare.pdq_mirror is bare.pdq_trimmed is bare.trim is None
    no_mirror = hash_media(photo, mirror=False)
    assert no_mirror.pdq_trimmed is not None and no_mirror.pdq_trimmed_mirror is None
    full = hash_media(photo, dihedral=True)
    assert full.pdq_mirror == full.pdq_dihedral[MIRROR_INDEX - 1]
    assert full.pdq_trimmed == no_mirror.pdq_trimmed

    as_json = full.to_json()
    assert as_json["pdq_trimmed"] == full.pdq_trimmed
    assert full.trim is not None
    assert as_json["trim"] == dict(zip(("top", "bottom", "left", "right"), full.trim, strict=True))
    assert "pdq_mirror" not in as_json
    plain_json = hash_media(_png(_photo("chelsea"))).to_json()
    assert "pdq_trimmed" not in plain_json and "trim" not in plain_json

    off = hash_bytes(photo, Settings(match_mirrored=False, trim_borders=False))
    assert off.pdq_mirror is off.pdq_trimmed is None
    on = hash_bytes(photo, Settings())
    assert on.pdq_mirror is not None and on.pdq_trimmed is not None


def test_bank_side_function_agrees_with_queries() -> None:
    # Bank entries added from media store the trimmed PDQ from pdq_trimmed_from_pixels:
    # the same canonical preprocessing and trimming as a query's.
    image = _caption(_photo("coffee"), "bottom")
    trimmed = pdq_trimmed_from_pixels(np.asarray(image))
    query = hash_media(_png(image))
    assert trimmed is not None
    assert trimmed.pdq.hex == query.pdq_trimmed
    assert trimmed.mirror == query.pdq_trimmed_mirror
    assert trimmed.shares == query.trim
    assert pdq_trimmed_from_pixels(np.asarray(_photo("coffee"))) is None
