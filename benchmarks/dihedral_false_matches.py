"""How many false matches does dihedral PDQ matching add between unrelated photos?

Unrelated photos: scikit-image's bundled sample images, plus crops of each at five positions
(60% of each side: four corners and the centre) to have more pairs. Pairs of crops of the
same photo are never counted; only the left view of the stereo pair is used, and ``cat`` is
left out (it is ``chelsea`` under another name).

Each item is hashed the Amparo way (canonical preprocessing, ``pdq_dihedral_from_pixels``).
A pair matches *plainly* when the two PDQ hashes are within 31 bits; it matches *with
dihedral* when some of the eight dihedral hashes of either one is within 31 bits of the
other's plain hash (what a bank with dihedral matching on would find).

    python benchmarks/dihedral_false_matches.py [--markdown FILE]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from skimage import data

from amparo.signals.pdq import (
    DEFAULT_MIN_QUALITY,
    DEFAULT_THRESHOLD,
    hexes_to_array,
    pdq_dihedral_from_pixels,
)

PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "stereo_motorcycle",
    "text",
)
CROP = 0.6
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _load(name: str) -> NDArray[np.uint8]:
    pixels = getattr(data, name)()
    if isinstance(pixels, tuple):  # stereo_motorcycle: left view only
        pixels = pixels[0]
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 4:  # logo: flatten alpha on white
        alpha = pixels[:, :, 3:4].astype(np.float32) / 255
        pixels = pixels[:, :, :3] * alpha + 255 * (1 - alpha)
    return np.asarray(pixels, dtype=np.uint8)


def _crops(pixels: NDArray[np.uint8]) -> list[NDArray[np.uint8]]:
    height, width = pixels.shape[:2]
    ch, cw = int(height * CROP), int(width * CROP)
    origins = [(0, 0), (0, width - cw), (height - ch, 0), (height - ch, width - cw)]
    origins.append(((height - ch) // 2, (width - cw) // 2))
    return [pixels[y : y + ch, x : x + cw] for y, x in origins]


def _distances(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> NDArray[np.int32]:
    """Hamming distances between packed hashes, broadcasting over leading axes."""
    counts: NDArray[np.int32] = _POPCOUNT[np.bitwise_xor(a, b)].sum(axis=-1, dtype=np.int32)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()

    items: list[tuple[str, NDArray[np.uint8], int]] = []  # (photo, 8 packed hashes, quality)
    for name in PHOTOS:
        full = _load(name)
        for pixels in [full, *_crops(full)]:
            hashes, quality = pdq_dihedral_from_pixels(pixels)
            items.append((name, hexes_to_array(hashes), quality))

    plain: list[int] = []
    dihedral: list[int] = []
    good: list[bool] = []
    for (name_a, a, qa), (name_b, b, qb) in itertools.combinations(items, 2):
        if name_a == name_b:
            continue
        plain.append(int(_distances(a[0], b[0])))
        dihedral.append(int(min(_distances(a, b[0]).min(), _distances(b, a[0]).min())))
        good.append(min(qa, qb) >= DEFAULT_MIN_QUALITY)

    p, d, g = np.array(plain), np.array(dihedral), np.array(good)
    lines = [
        f"Items: {len(PHOTOS)} scikit-image photos, each whole and as 5 crops "
        f"({CROP:.0%} of each side) = {len(items)} hashes; {len(p)} pairs of items from "
        f"different photos ({int(g.sum())} with both qualities >= {DEFAULT_MIN_QUALITY}).",
        "",
        "| pairs | matching | plain PDQ | any of 8 dihedral |",
        "|---|---|---:|---:|",
    ]
    for label, mask in (("all", np.ones_like(g)), (f"quality >= {DEFAULT_MIN_QUALITY}", g)):
        for threshold in (DEFAULT_THRESHOLD, 40, 50, 60):
            lines.append(
                f"| {label} | <= {threshold} bits | {int((p[mask] <= threshold).sum())} "
                f"| {int((d[mask] <= threshold).sum())} |"
            )
    lines += ["", "| lower tail of distances (all pairs) | plain PDQ | any of 8 dihedral |"]
    lines += ["|---|---:|---:|"]
    lines.append(f"| minimum | {p.min()} | {d.min()} |")
    for q in (0.1, 1, 5, 50):
        lines.append(
            f"| {q:g}th percentile | {np.percentile(p, q):.0f} | {np.percentile(d, q):.0f} |"
        )
    closest = sorted(
        (
            (dv, items[i][0], items[j][0])
            for (i, j), dv in zip(
                (
                    (i, j)
                    for i, j in itertools.combinations(range(len(items)), 2)
                    if items[i][0] != items[j][0]
                ),
                dihedral,
                strict=True,
            )
        )
    )[:5]
    lines += ["", "Closest dihedral pairs: " + ", ".join(f"{a}/{b} {dv}" for dv, a, b in closest)]
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
