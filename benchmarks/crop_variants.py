"""How many cropped copies of a photo the bank-side crop variants catch, and at what cost.

For each scikit-image sample photo: the PDQ of the original and of candidate crop variants
(cut from its canonical luma, as ``BankService.add_media`` does), and the PDQ of cropped
copies (cut from the full picture, saved as JPEG q90, hashed as a query is). A copy is
found when the original or one stored variant is within 31 bits. Also counts the pairs of
different photos whose original or variants match each other's copies (false matches).

    python benchmarks/crop_variants.py [--set default|NAME...]

Benign images only (scikit-image's bundled samples).
"""

from __future__ import annotations

import argparse
import io
import itertools

import numpy as np
from PIL import Image

from amparo.hashing import hash_media
from amparo.media.decode import decode_image
from amparo.signals.pdq import DEFAULT_THRESHOLD, PdqSignal, canonical_luma, pdq_from_pixels
from amparo.signals.pdq_variants import CROPS, SIDES, Crop, centre_crop, side_crop

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
    "coins",
    "page",
    "text",
    "cell",
    "colorwheel",
    "clock",
    "brick",
    "grass",
    "gravel",
)


def photo(name: str) -> Image.Image:
    from skimage import data

    pixels = getattr(data, name)()
    if isinstance(pixels, tuple):
        pixels = pixels[0]
    return Image.fromarray(np.asarray(pixels)).convert("RGB")


def encode(image: Image.Image, fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def copies() -> dict[str, list[Crop]]:
    """Cropped copies by bucket."""
    corner = [
        Crop(f"corner{p}-{a}{b}", **{a: p / 200, b: p / 200})
        for p in (5, 10)
        for a, b in (("left", "top"), ("right", "bottom"))
    ]
    return {
        "1.3%-a-side (test)": [Crop("c1.3", 0.0132, 0.0132, 0.0132, 0.0132)],
        "3% one side/centred": [side_crop(3, s) for s in SIDES] + [centre_crop(3)],
        "5% one side/centred": [side_crop(5, s) for s in SIDES] + [centre_crop(5)],
        "7% one side/centred": [side_crop(7, s) for s in SIDES] + [centre_crop(7)],
        "10% one side/centred": [side_crop(10, s) for s in SIDES] + [centre_crop(10)],
        "12% one side/centred": [side_crop(12, s) for s in SIDES] + [centre_crop(12)],
        "corners 5%/10% (two sides)": corner,
    }


CANDIDATES = {
    "none": (),
    "default": CROPS,
    "centre only": (centre_crop(5), centre_crop(10)),
    "5 only": tuple(c for c in CROPS if c.name.startswith("crop5-")),
    "default-2.5c": tuple(c for c in CROPS if c.name != "crop2.5-centre"),
    "default+15c": (*CROPS, centre_crop(15)),
    "default+7.5sides": (*CROPS, *(side_crop(7.5, s) for s in SIDES)),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", nargs="*", default=list(PHOTOS))
    args = parser.parse_args()
    buckets = copies()
    all_crops = {c.name: c for cs in CANDIDATES.values() for c in cs}
    variants: dict[str, dict[str, str]] = {}
    originals: dict[str, str] = {}
    copy_hashes: dict[str, dict[str, list[str]]] = {}
    for name in args.photos:
        image = photo(name)
        luma = canonical_luma(decode_image(encode(image, "PNG"), mode="L").pixels)
        originals[name] = pdq_from_pixels(luma).hex
        h, w = luma.shape
        variants[name] = {}
        for crop in all_crops.values():
            x0, y0, x1, y1 = crop.box(w, h)
            pdq = pdq_from_pixels(np.ascontiguousarray(luma[y0:y1, x0:x1]))
            if pdq.quality >= 50:
                variants[name][crop.name] = pdq.hex
        copy_hashes[name] = {}
        for bucket, crops in buckets.items():
            out = []
            for crop in crops:
                cropped = image.crop(crop.box(image.width, image.height))
                result = hash_media(encode(cropped))
                assert result.pdq is not None
                out.append(result.pdq)
            copy_hashes[name][bucket] = out
    print(f"{len(args.photos)} photos; threshold {DEFAULT_THRESHOLD}")
    header = "set".ljust(20) + "rows " + " | ".join(b[:14].ljust(14) for b in buckets) + " | false"
    print(header)
    for set_name, crops in CANDIDATES.items():
        names = [c.name for c in crops]
        cells = []
        rows = 0
        for bucket in buckets:
            found = total = 0
            for photo_name in args.photos:
                stored = [originals[photo_name]] + [
                    variants[photo_name][n] for n in names if n in variants[photo_name]
                ]
                for copy in copy_hashes[photo_name][bucket]:
                    total += 1
                    found += min(PdqSignal.distance(copy, s) for s in stored) <= DEFAULT_THRESHOLD
            cells.append(f"{found:3d}/{total:3d} {100 * found / total:3.0f}%")
        false = 0
        for a, b in itertools.permutations(args.photos, 2):
            stored = [originals[a]] + [variants[a][n] for n in names if n in variants[a]]
            queries = [originals[b]] + [q for qs in copy_hashes[b].values() for q in qs]
            false += any(
                PdqSignal.distance(q, s) <= DEFAULT_THRESHOLD for q in queries for s in stored
            )
        rows = sum(1 + sum(n in variants[p] for n in names) for p in args.photos)
        print(set_name.ljust(20) + f"{rows:4d} " + " | ".join(cells) + f" | {false}")
    missed = {
        p: [
            (b, i)
            for b in buckets
            for i, q in enumerate(copy_hashes[p][b])
            if min(
                PdqSignal.distance(q, s)
                for s in [originals[p]]
                + [variants[p][c.name] for c in CROPS if c.name in variants[p]]
            )
            > DEFAULT_THRESHOLD
        ]
        for p in args.photos
    }
    print("missed with default:", {p: m for p, m in missed.items() if m})


if __name__ == "__main__":
    main()
