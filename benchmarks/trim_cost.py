"""What do the mirrored PDQ and border trimming add to hashing one photo?

scikit-image's bundled photos scaled (bicubic) to 1, 3, 6 and 12 megapixels and saved as
JPEG (quality 90), hashed with ``hash_media`` four ways, interleaved in one run so machine
load hits them alike: ``before`` (``mirror=False, trim=False``: PDQ alone, the code path
before trimming existed), ``after`` (the defaults: mirrored PDQ and trimming), and the same
two on the photo with an 8% black pad (which ``after`` trims and hashes a second time).
Each figure is the fastest of ``--repeat`` runs; ratios are of the sums over the photos.

    python benchmarks/trim_cost.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable
from functools import partial

import numpy as np
from PIL import Image
from skimage import data

from amparo.hashing import hash_media

PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "hubble_deep_field", "moon", "rocket")
MEGAPIXELS = (1, 3, 6, 12)


def _photo(name: str, megapixels: float) -> Image.Image:
    image = Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")
    scale = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.BICUBIC)


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def _padded(image: Image.Image) -> Image.Image:
    dx, dy = round(image.width * 0.08), round(image.height * 0.08)
    out = Image.new("RGB", (image.width + 2 * dx, image.height + 2 * dy))
    out.paste(image, (dx, dy))
    return out


def _fastest(runs: list[Callable[[], object]], repeat: int) -> list[float]:
    """The fastest of ``repeat`` runs of each, taking turns."""
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    print("| MP | before | after | ratio | padded before | padded after | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for megapixels in MEGAPIXELS:
        sums = [0.0, 0.0, 0.0, 0.0]
        for name in PHOTOS:
            image = _photo(name, megapixels)
            plain, padded = _jpeg(image), _jpeg(_padded(image))
            assert hash_media(plain).pdq_trimmed is None, name
            runs: list[Callable[[], object]] = [
                partial(hash_media, plain, mirror=False, trim=False),
                partial(hash_media, plain),
                partial(hash_media, padded, mirror=False, trim=False),
                partial(hash_media, padded),
            ]
            for i, seconds in enumerate(_fastest(runs, args.repeat)):
                sums[i] += seconds
        n = len(PHOTOS) / 1000
        print(
            f"| {megapixels} | {sums[0] / n:.0f} ms | {sums[1] / n:.0f} ms | "
            f"{sums[1] / sums[0]:.2f} | {sums[2] / n:.0f} ms | {sums[3] / n:.0f} ms | "
            f"{sums[3] / sums[2]:.2f} |"
        )
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
