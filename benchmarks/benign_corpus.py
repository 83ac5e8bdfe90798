"""A deterministic corpus of benign photos for the detection benchmarks, from packaged sources.

Sources (each item records which):

- ``scikit-image``: the photos bundled inside the scikit-image package (no download). Only
  real photos are used (no synthetic test patterns: ``checkerboard``, ``binary_blobs``,
  ``shepp_logan_phantom``, ``horse``, ``logo``, ``colorwheel``); ``cat`` is ``chelsea`` under
  another name and ``lfw_subset`` is 25-pixel faces, both left out. ``stereo_motorcycle`` is
  the left view (the right view is a near duplicate of it; see :func:`natural_near_duplicates`).
- ``threatexchange-pdq``: the bridge photo of ``../shared/reference/pdq`` (the other files
  there are edits of it), skipped when the reference directory is absent.
- ``threatexchange-vpdq``: frames of ``../shared/reference/vpdq/videos/*.mp4`` decoded with
  PyAV, one every ``FRAME_SECONDS``; skipped when absent. The three ``chair`` clips are one
  recording: only ``chair-orig-22-sd-bar`` is used here.

scikit-learn and matplotlib (whose sample photos the brief also allowed) are not installed in
the project's environment, so they are not used.

To reach a few hundred distinct photos, each photo is also cut into non-overlapping tiles on
grids of 2x2, 3x3... (every tile at least ``MIN_SIDE`` pixels a side). A tile is a different
picture to PDQ (its hash is unrelated to its photo's), but tiles of one photo share its
style, subject and camera, so pairs of items of the same photo are reported apart from pairs
of different photos. Tiles of different grids of one photo overlap (a 2x2 tile holds parts of
several 4x4 tiles). Items too flat for a PDQ entry (quality below 50, e.g. the black corners
of ``retina``) are left out, and no photo gives more than ``MAX_PER_PHOTO`` items. The
order interleaves the photos (a clip's frames count as one photo), so the first N items of
the corpus come from as many photos as possible.

    python benchmarks/benign_corpus.py          # list the corpus: items per source and photo
"""

from __future__ import annotations

import collections
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from amparo.signals.pdq import DEFAULT_MIN_QUALITY, pdq_from_pixels

REFERENCE_DIR = Path(
    os.environ.get(
        "AMPARO_REFERENCE_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "reference"
    )
)
SKIMAGE_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "stereo_motorcycle",
    "text",
)
VIDEOS = ("chair-orig-22-sd-bar", "doorknob-hd-no-bar", "pattern-sd-grey-bar")
"""Clips whose frames are photos (``test-padded-dimensions`` is a synthetic pattern too but
is kept out for its odd padding; the other chair clips repeat the same recording)."""
FRAME_SECONDS = 2.0
MIN_SIDE = 128
MAX_GRID = 6
MAX_PER_PHOTO = 40
"""At most this many items of one photo (the largest, ``retina`` and ``hubble_deep_field``,
would otherwise be a third of the corpus)."""


@dataclass(frozen=True)
class Photo:
    """One benign picture of the corpus."""

    name: str
    """Unique: ``photo`` plus where it was cut from (``astronaut/g2-r0c1``: 2x2 grid, tile at
    row 0, column 1)."""
    source: str
    """The package or reference set it comes from."""
    photo: str
    """The picture it was cut from (the unit for "same photo" pairs)."""
    pixels: NDArray[np.uint8]
    """RGB, ``(height, width, 3)``."""


def as_rgb(pixels: NDArray[np.generic]) -> NDArray[np.uint8]:
    """Any bundled image as RGB uint8 (grey stacked, alpha flattened on white)."""
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float64), 0, 1) * 255).round()
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255
        arr = arr[:, :, :3] * alpha + 255 * (1 - alpha)
    return np.ascontiguousarray(arr, dtype=np.uint8)


def skimage_photo(name: str) -> NDArray[np.uint8]:
    from skimage import data

    pixels = getattr(data, name)()
    if isinstance(pixels, tuple):  # stereo_motorcycle: (left, right, disparity)
        pixels = pixels[0]
    return as_rgb(pixels)


def video_frames(path: Path, every_seconds: float) -> Iterator[tuple[float, NDArray[np.uint8]]]:
    """(time, RGB frame) one every ``every_seconds`` of a clip, from its start."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        due = 0.0
        for frame in container.decode(stream):
            t = float(frame.time or 0.0)
            if t + 1e-6 >= due:
                yield t, np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
                due += every_seconds


def parent_photos(
    reference_dir: Path | None = REFERENCE_DIR,
    *,
    frame_seconds: float = FRAME_SECONDS,
    videos: tuple[str, ...] = VIDEOS,
) -> list[tuple[str, str, NDArray[np.uint8]]]:
    """(source, photo name, RGB pixels) of every whole photo, before tiling. Video frames
    are photos of their own, named ``clip@seconds``."""
    out = [("scikit-image", name, skimage_photo(name)) for name in SKIMAGE_PHOTOS]
    if reference_dir is not None and (reference_dir / "pdq").is_dir():
        from PIL import Image

        with Image.open(reference_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg") as img:
            out.append(("threatexchange-pdq", "bridge", as_rgb(np.asarray(img.convert("RGB")))))
    video_dir = reference_dir / "vpdq" / "videos" if reference_dir is not None else None
    if video_dir is not None and video_dir.is_dir():
        for clip in videos:
            path = video_dir / f"{clip}.mp4"
            if path.exists():
                for t, frame in video_frames(path, frame_seconds):
                    out.append(("threatexchange-vpdq", f"{clip}@{t:.1f}s", frame))
    return out


def tiles(pixels: NDArray[np.uint8], grid: int) -> Iterator[tuple[str, NDArray[np.uint8]]]:
    """The ``grid`` x ``grid`` non-overlapping tiles of a picture, row by row."""
    height, width = pixels.shape[:2]
    ys = np.linspace(0, height, grid + 1).astype(int)
    xs = np.linspace(0, width, grid + 1).astype(int)
    for r, c in itertools.product(range(grid), range(grid)):
        yield f"g{grid}-r{r}c{c}", pixels[ys[r] : ys[r + 1], xs[c] : xs[c + 1]]


def _usable(pixels: NDArray[np.uint8]) -> bool:
    return pdq_from_pixels(pixels).quality >= DEFAULT_MIN_QUALITY


def _group(photo: str) -> str:
    """Frames of one clip are one photo for "same photo" pairs."""
    return photo.split("@", 1)[0]


def benign_photos(
    limit: int | None = None,
    reference_dir: Path | None = REFERENCE_DIR,
    *,
    min_side: int = MIN_SIDE,
    max_grid: int = MAX_GRID,
    max_per_photo: int = MAX_PER_PHOTO,
) -> list[Photo]:
    """The corpus: every photo whole and as tiles, photos interleaved; the first ``limit``."""
    per_photo: dict[str, list[Photo]] = {}
    for source, name, pixels in parent_photos(reference_dir):
        items = [Photo(name, source, _group(name), pixels)] if _usable(pixels) else []
        # Video frames are used whole (their clips share one scene: tiles of a few frames
        # would be mostly of the same things).
        grids = range(2, max_grid + 1) if source != "threatexchange-vpdq" else range(0)
        for grid in grids:
            if min(pixels.shape[:2]) // grid < min_side:
                break
            for where, tile in tiles(pixels, grid):
                if _usable(tile):
                    items.append(Photo(f"{name}/{where}", source, _group(name), tile))
        group = per_photo.setdefault(_group(name), [])
        group.extend(items[: max(0, max_per_photo - len(group))])
    rounds = itertools.zip_longest(*per_photo.values())
    ordered = [p for row in rounds for p in row if p is not None]
    return ordered[:limit] if limit is not None else ordered


def random_crops(
    photos: list[tuple[str, str, NDArray[np.uint8]]], per_photo: int, seed: int = 17
) -> list[Photo]:
    """``per_photo`` random crops (10-60% of each side, any position) of each photo: more
    items for pair counts. Crops of one photo may overlap each other."""
    rng = np.random.default_rng(seed)
    out = []
    for source, name, pixels in photos:
        height, width = pixels.shape[:2]
        made = tries = 0
        while made < per_photo and tries < per_photo * 4:
            tries += 1
            h = max(32, int(height * rng.uniform(0.1, 0.6)))
            w = max(32, int(width * rng.uniform(0.1, 0.6)))
            y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            crop = pixels[y : y + h, x : x + w]
            if _usable(crop):
                out.append(Photo(f"{name}/crop{made}", source, _group(name), crop))
                made += 1
    return out


def main() -> None:
    corpus = benign_photos()
    print(f"{len(corpus)} photos")
    by_source = collections.Counter(p.source for p in corpus)
    by_photo = collections.Counter(p.photo for p in corpus)
    for source, n in sorted(by_source.items()):
        print(f"  {source}: {n}")
    print("  per photo: " + ", ".join(f"{k} {v}" for k, v in sorted(by_photo.items())))


if __name__ == "__main__":
    main()
