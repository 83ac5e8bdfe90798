"""How many false matches do mirror (flipx) and dihedral PDQ matching add between unrelated
photos? Counted over more than a million pairs of different photos.

Items: the benign corpus (``benign_corpus.py``: scikit-image's bundled photos whole and as
tiles, the ThreatExchange bridge photo, frames of the reference clips) plus ``--crops``
random crops of each still photo (10-60% of each side, seeded), plus frames of all six
reference clips every half second (consecutive frames and the three chair clips are near
duplicates: natural ones). Items too flat for a PDQ entry (quality < 50) are left out.

Each item is encoded as PNG and hashed the Amparo way (``amparo.hashing.hash_media`` with
``dihedral=True``: the decoder's luma, canonical preprocessing, the eight dihedral PDQs).
For a pair (A, B):

- *plain*: PDQ(A) and PDQ(B) within 31 bits;
- *mirror*: plain, or flipx(A) within 31 of PDQ(B), or PDQ(A) within 31 of flipx(B) (what
  ``match_mirrored`` adds in every bank);
- *dihedral*: any of A's eight within 31 of PDQ(B), or any of B's eight of PDQ(A) (banks
  with ``dihedral``).

Pairs of items cut from the same photo (or frames of one recording) are counted apart:
they are near duplicates when the tiles or crops overlap or the frames are close.
Hamming distances are computed with numpy over packed uint64 words, every pair at once.

    python benchmarks/dihedral_false_matches.py [--crops 60] [--quick] [--markdown F] [--json F]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from amparo.hashing import hash_media
from amparo.signals.pdq import (
    DEFAULT_MIN_QUALITY,
    DEFAULT_THRESHOLD,
    DIHEDRAL_NAMES,
    hexes_to_array,
)
from benign_corpus import (
    REFERENCE_DIR,
    Photo,
    benign_photos,
    parent_photos,
    random_crops,
    video_frames,
)
from detection import hamming, machine

FLIPX = DIHEDRAL_NAMES.index("flipx")
CLIPS = (
    "chair-19-sd-bar",
    "chair-22-sd-grey-bar",
    "chair-orig-22-sd-bar",
    "doorknob-hd-no-bar",
    "pattern-sd-grey-bar",
    "test-padded-dimensions",
)


def _group(photo: str) -> str:
    """The three chair clips are one recording."""
    return "chair" if photo.startswith("chair") else photo


def items(crops_per_photo: int, frame_seconds: float) -> list[Photo]:
    out = benign_photos()
    stills = [p for p in parent_photos(REFERENCE_DIR, videos=()) if "@" not in p[1]]
    out += random_crops(stills, crops_per_photo)
    video_dir = REFERENCE_DIR / "vpdq" / "videos"
    for clip in CLIPS if video_dir.is_dir() else ():
        for t, frame in video_frames(video_dir / f"{clip}.mp4", frame_seconds):
            out.append(Photo(f"{clip}@{t:.2f}s", "threatexchange-vpdq", clip, frame))
    return out


def hash_all(photos: list[Photo]) -> tuple[list[Photo], NDArray[np.uint64]]:
    """The photos with a usable PDQ, and their eight dihedral hashes: (n, 8, 4) uint64."""
    kept, rows = [], []
    for p in photos:
        buf = io.BytesIO()
        Image.fromarray(p.pixels).save(buf, format="PNG", compress_level=1)
        hashed = hash_media(buf.getvalue(), dihedral=True)
        if hashed.pdq is None or (hashed.pdq_quality or 0) < DEFAULT_MIN_QUALITY:
            continue
        kept.append(p)
        rows.append(hexes_to_array([hashed.pdq, *hashed.pdq_dihedral]).view(np.uint64))
    return kept, np.stack(rows)


def pair_distances(hashes: NDArray[np.uint64]) -> dict[str, NDArray[np.int64]]:
    """(n, n) distances of every pair: plain, mirror (flipx either way), dihedral (any of
    eight either way). Symmetric."""
    plain = hamming(hashes[:, 0], hashes[:, 0])
    mirror_ab = hamming(hashes[:, FLIPX], hashes[:, 0])
    mirror = np.minimum(plain, np.minimum(mirror_ab, mirror_ab.T))
    dihedral = plain.copy()
    for t in range(1, hashes.shape[1]):
        d = hamming(hashes[:, t], hashes[:, 0])
        np.minimum(dihedral, np.minimum(d, d.T), out=dihedral)
    return {"plain": plain, "mirror": mirror, "dihedral": dihedral}


def count(photos: list[Photo], dist: dict[str, NDArray[np.int64]]) -> dict[str, object]:
    n = len(photos)
    groups = np.array([_group(p.photo) for p in photos])
    sources = np.array([p.source for p in photos])
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    sets = {
        "different photos": upper & (groups[:, None] != groups[None, :]),
        "different sources": upper & (sources[:, None] != sources[None, :]),
        "same photo (near duplicates possible)": upper & (groups[:, None] == groups[None, :]),
    }
    out: dict[str, object] = {}
    for label, mask in sets.items():
        row: dict[str, object] = {"pairs": int(mask.sum())}
        for kind, d in dist.items():
            values = d[mask]
            row[kind] = {str(t): int((values <= t).sum()) for t in (DEFAULT_THRESHOLD, 40, 50)}
            if label == "different photos":
                row[f"{kind}_min"] = int(values.min())
                row[f"{kind}_p0.001"] = float(np.percentile(values, 0.001))
                row[f"{kind}_p1"] = float(np.percentile(values, 1))
        out[label] = row
    diff = sets["different photos"]
    worst = np.argwhere(diff & (dist["dihedral"] <= DEFAULT_THRESHOLD))
    out["closest_dihedral_different_photos"] = sorted(
        (int(dist["dihedral"][i, j]), photos[i].name, photos[j].name) for i, j in worst
    )[:10]
    worst = np.argwhere(diff & (dist["mirror"] <= DEFAULT_THRESHOLD))
    out["mirror_matches_different_photos"] = sorted(
        (int(dist["mirror"][i, j]), photos[i].name, photos[j].name) for i, j in worst
    )[:10]
    return out


def markdown(result: dict[str, object]) -> str:
    t = str(DEFAULT_THRESHOLD)
    lines = [
        f"Items: {result['items']} hashes ({result['sources']}); hashing took "
        f"{result['hash_seconds']:.0f} s, the pair counts {result['pair_seconds']:.1f} s; "
        f"{result['machine_start']['date']}, load average "  # type: ignore[index]
        f"{result['machine_start']['load_average']} to "  # type: ignore[index]
        f"{result['machine_end']['load_average']}.",  # type: ignore[index]
        "",
        f"| pairs | count | plain PDQ <= {t} | + mirror (flipx) <= {t} | "
        f"any of 8 dihedral <= {t} |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, row in result["counts"].items():  # type: ignore[attr-defined]
        if not isinstance(row, dict) or "pairs" not in row:
            continue
        pairs = row["pairs"]
        cells = [
            f"{row[k][t]} ({row[k][t] / pairs:.5%})" if pairs else "-"
            for k in ("plain", "mirror", "dihedral")
        ]
        lines.append(f"| {label} | {pairs:,} | " + " | ".join(cells) + " |")
    diff = result["counts"]["different photos"]  # type: ignore[index]
    lines += [
        "",
        "| different photos | plain | mirror | dihedral |",
        "|---|---:|---:|---:|",
    ]
    for key in ("40", "50"):
        lines.append(
            f"| <= {key} bits | "
            + " | ".join(str(diff[k][key]) for k in ("plain", "mirror", "dihedral"))
            + " |"
        )
    for stat in ("min", "p0.001", "p1"):
        lines.append(
            f"| {stat} distance | "
            + " | ".join(f"{diff[f'{k}_{stat}']:.0f}" for k in ("plain", "mirror", "dihedral"))
            + " |"
        )
    for key, label in (
        ("mirror_matches_different_photos", "Mirror matches of different photos"),
        ("closest_dihedral_different_photos", "Dihedral matches of different photos"),
    ):
        found = result["counts"][key]  # type: ignore[index]
        lines += ["", f"{label}: " + (", ".join(f"{a} ~ {b} ({d})" for d, a, b in found) or "none")]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=60, help="random crops per still photo")
    parser.add_argument("--frame-seconds", type=float, default=0.5)
    parser.add_argument("--quick", action="store_true", help="5 crops a photo, frames each 2 s")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    crops, seconds = (5, 2.0) if args.quick else (args.crops, args.frame_seconds)
    result: dict[str, object] = {"machine_start": machine()}
    start = time.perf_counter()
    photos, hashes = hash_all(items(crops, seconds))
    result["hash_seconds"] = time.perf_counter() - start
    result["items"] = len(photos)
    result["sources"] = {s: sum(p.source == s for p in photos) for s in {p.source for p in photos}}
    start = time.perf_counter()
    result["counts"] = count(photos, pair_distances(hashes))
    result["pair_seconds"] = time.perf_counter() - start
    result["machine_end"] = machine()
    table = markdown(result)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
