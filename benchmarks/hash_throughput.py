"""PDQ hashing throughput: Amparo against python-threatexchange, on realistic JPEG photos.

Makes JPEGs (quality 90) at 640x480, 1920x1080 and 4000x3000 from scikit-image's bundled
colour photos (upscaled, cropped to the aspect, with film-grain noise so they compress like
camera photos), writes them to a temporary directory, then, in one single-threaded process,
hashes each file with:

- Amparo, PDQ part: ``decode_image(mode="L")`` + ``pdq_from_pixels`` (what ``hash_media``
  does for PDQ; apples to apples with the peer, which computes PDQ only);
- Amparo, ``hash_media``: the above plus MD5, SHA-1 and SHA-256 of the file;
- python-threatexchange: ``PdqSignal.hash_from_file``.

Runs are interleaved file by file so machine load hits every contender alike. Speed is
images per CPU-second of this process (= images/second on one core); wall-clock figures are
printed too. Drift is the PDQ distance between Amparo's hash and pdqhash on the fully
decoded RGB image.

    python benchmarks/hash_throughput.py [--repeat 3] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image, ImageOps
from skimage import data
from threatexchange.signal_type.pdq.signal import PdqSignal as PeerPdqSignal

from amparo.hashing import hash_media
from amparo.media.decode import decode_image
from amparo.signals.pdq import PdqSignal, bits_to_hex, pdq_from_pixels

SIZES = ((640, 480), (1920, 1080), (4000, 3000))
PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "rocket",
    "stereo_motorcycle",
)


def make_photos(directory: Path) -> dict[tuple[int, int], list[Path]]:
    rng = np.random.default_rng(2024)
    out: dict[tuple[int, int], list[Path]] = {size: [] for size in SIZES}
    for name in PHOTOS:
        pixels = getattr(data, name)()
        if isinstance(pixels, tuple):
            pixels = pixels[0]
        photo = Image.fromarray(np.asarray(pixels)).convert("RGB")
        for width, height in SIZES:
            scale = max(width / photo.width, height / photo.height)
            big = photo.resize(
                (round(photo.width * scale) + 1, round(photo.height * scale) + 1),
                Image.Resampling.BICUBIC,
            )
            left, top = (big.width - width) // 2, (big.height - height) // 2
            big = big.crop((left, top, left + width, top + height))
            grain = rng.normal(0, 4, (height, width, 1))
            noisy = np.clip(np.asarray(big, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
            path = directory / f"{name}-{width}x{height}.jpg"
            Image.fromarray(noisy).save(path, format="JPEG", quality=90)
            out[(width, height)].append(path)
    return out


def amparo_pdq(path: Path) -> str:
    return pdq_from_pixels(decode_image(path.read_bytes(), mode="L").pixels).hex


def amparo_hash_media(path: Path) -> str:
    result = hash_media(path.read_bytes())
    assert result.pdq is not None, result.error
    return result.pdq


def peer_pdq(path: Path) -> str:
    signal: str = PeerPdqSignal.hash_from_file(path)
    return signal


def full_resolution_pdq(path: Path) -> str:
    with Image.open(path) as image:
        rgb = np.asarray((ImageOps.exif_transpose(image) or image).convert("RGB"))
    bits, _ = pdqhash.compute(rgb)
    return bits_to_hex(bits)


CONTENDERS: dict[str, Callable[[Path], str]] = {
    "amparo-pdq": amparo_pdq,
    "amparo-hash_media": amparo_hash_media,
    "threatexchange": peer_pdq,
}


def measure(paths: list[Path], repeat: int) -> dict[str, tuple[float, float]]:
    """Contender -> (images per CPU-second, images per wall-second)."""
    cpu = dict.fromkeys(CONTENDERS, 0.0)
    wall = dict.fromkeys(CONTENDERS, 0.0)
    for path in paths:  # warm the page cache and imports
        for fn in CONTENDERS.values():
            fn(path)
    for _ in range(repeat):
        for path in paths:
            for name, fn in CONTENDERS.items():
                c0, w0 = time.process_time(), time.perf_counter()
                fn(path)
                cpu[name] += time.process_time() - c0
                wall[name] += time.perf_counter() - w0
    n = len(paths) * repeat
    return {name: (n / cpu[name], n / wall[name]) for name in CONTENDERS}


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            (ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if "Model name" in ln),
            platform.processor(),
        )
    except (OSError, subprocess.CalledProcessError):
        model = platform.processor()
    return f"{model}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="amparo-bench-") as tmp:
        photos = make_photos(Path(tmp))
        rows: list[str] = []
        drift_all: list[int] = []
        for size in SIZES:
            paths = photos[size]
            speed = measure(paths, args.repeat)
            drift = [PdqSignal.distance(amparo_pdq(p), full_resolution_pdq(p)) for p in paths]
            drift_all += drift
            peer_cpu, peer_wall = speed["threatexchange"]
            ours_cpu, ours_wall = speed["amparo-pdq"]
            media_cpu, _ = speed["amparo-hash_media"]
            rows.append(
                f"| {size[0]}x{size[1]} | {ours_cpu:.1f} ({ours_wall:.1f}) "
                f"| {media_cpu:.1f} | {peer_cpu:.2f} ({peer_wall:.2f}) "
                f"| {ours_cpu / peer_cpu:.1f}x | {media_cpu / peer_cpu:.1f}x "
                f"| {statistics.median(drift):.0f} / {max(drift)} |"
            )
            print(rows[-1], flush=True)

    header = [
        f"Machine: {machine()}; shared with other engineers' jobs while measured, so wall-clock",
        "figures are noisy: images/second are per CPU-second of the single benchmark process",
        "(wall-clock in brackets).",
        f"Date: {dt.date.today().isoformat()}. Python {platform.python_version()}, "
        f"Pillow {version('Pillow')}, numpy {version('numpy')}, pdqhash {version('pdqhash')}, "
        f"threatexchange {version('threatexchange')}, amparo {version('amparo')}.",
        f"Photos: {len(PHOTOS)} scikit-image colour photos per size, JPEG quality 90; "
        f"{args.repeat} timed passes.",
        "",
        "| size | Amparo PDQ img/s | Amparo hash_media img/s (PDQ + MD5/SHA-1/SHA-256) "
        "| threatexchange img/s | PDQ speed-up | hash_media speed-up "
        "| drift vs full-res, median / max bits |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    footer = [
        "",
        f"Drift over all {len(drift_all)} files: median {statistics.median(drift_all):.0f}, "
        f"max {max(drift_all)} bits.",
    ]
    table = "\n".join(header + rows + footer)
    print()
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
