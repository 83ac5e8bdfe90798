"""Detection of edited copies of banked photos (issue #17): Amparo against plain PDQ.

Every photo of the benign corpus (``benign_corpus.py``) is added, as PNG, to a bank of an
Amparo installation in a temporary home (``BankService.add_media``: whatever the app stores
for a photo, crop variants included when it makes them). Each photo is then edited and the
copy looked up the way the service does (``checks.hash_bytes`` then ``checks.match_hashes``).
A copy is *found* when a PDQ match names its original's entry (MD5 hits are ignored: no copy
has the original's bytes). *Plain PDQ* is the baseline: ``pdqhash.compute`` on the full RGB
decode (Pillow) of original and copy, found when within 31 bits.

Edits: ``half``/``quarter`` (Lanczos resize), ``jpeg30``, ``crop5``/``crop10`` (5% or 10% of
the width and of the height removed; which sides rotates by photo index: from the left (the
height cut split top/bottom), the right, the top (the width cut split left/right), the
bottom, or centred (every side)), ``grey``, ``bright30`` (+30% brightness), ``blur2``
(Gaussian, radius 2), ``caption`` (a white bar 10% of the height added below, black text
"shared by @someone"), ``pad8black``/``pad8white`` (8% of the width added left and right, 8%
of the height top and bottom), ``mirror`` (left-right), ``pad8jpeg`` (black pad, then JPEG
q50). Informational, not in the mean: ``crop7`` (between the grid points of crop variants)
and ``rotate90``, looked up in a second bank with ``dihedral`` on. Lossless edits are PNG.

Unrelated pairs: for every copy of photo B and every original A != B, whether Amparo reports a
match of A's entry and whether plain PDQ puts them within 31 bits; pairs of items cut from
the same photo are counted apart (all pairs, and pairs of different photos).

Hashing time: ``checks.hash_bytes`` of the originals (no borders) with the default settings
against ``trim_borders=false, match_mirrored=false`` (what hashing did before issue #17).

    python benchmarks/detection.py [--photos N] [--quick] [--edits a,b] [--markdown F] [--json F]
"""

from __future__ import annotations

import argparse
import collections
import datetime
import io
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pdqhash
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
from amparo.app import Amparo
from amparo.banks.model import BankInfo
from amparo.config import load_settings
from amparo.signals.pdq import DEFAULT_THRESHOLD, hexes_to_array
from benign_corpus import Photo, benign_photos

Edit = Callable[[Image.Image, int], bytes]
SIDES = ("left", "right", "top", "bottom", "centre")


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _jpeg(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _resize(share: float) -> Edit:
    def edit(img: Image.Image, _i: int) -> bytes:
        size = (max(1, round(img.width * share)), max(1, round(img.height * share)))
        return _png(img.resize(size, Image.Resampling.LANCZOS))

    return edit


def crop_box(width: int, height: int, share: float, side: str) -> tuple[int, int, int, int]:
    """The box kept when ``share`` of the width and of the height are cut from ``side``."""
    dw, dh = round(width * share), round(height * share)
    left, top = {
        "left": (dw, dh // 2),
        "right": (0, dh // 2),
        "top": (dw // 2, dh),
        "bottom": (dw // 2, 0),
        "centre": (dw // 2, dh // 2),
    }[side]
    return left, top, left + width - dw, top + height - dh


def _crop(share: float) -> Edit:
    def edit(img: Image.Image, i: int) -> bytes:
        return _png(img.crop(crop_box(img.width, img.height, share, SIDES[i % len(SIDES)])))

    return edit


def _pad(img: Image.Image, share: float, colour: tuple[int, int, int]) -> Image.Image:
    dw, dh = round(img.width * share), round(img.height * share)
    out = Image.new("RGB", (img.width + 2 * dw, img.height + 2 * dh), colour)
    out.paste(img, (dw, dh))
    return out


def _caption(img: Image.Image, _i: int) -> bytes:
    bar = max(8, round(img.height * 0.10))
    out = Image.new("RGB", (img.width, img.height + bar), (255, 255, 255))
    out.paste(img, (0, 0))
    font = ImageFont.load_default(size=max(6, int(bar * 0.6)))
    ImageDraw.Draw(out).text(
        (max(2, bar // 4), img.height + bar // 5), "shared by @someone", fill=(0, 0, 0), font=font
    )
    return _png(out)


EDITS: dict[str, Edit] = {
    "half": _resize(0.5),
    "quarter": _resize(0.25),
    "jpeg30": lambda img, _i: _jpeg(img, 30),
    "crop5": _crop(0.05),
    "crop10": _crop(0.10),
    "grey": lambda img, _i: _png(img.convert("L")),
    "bright30": lambda img, _i: _png(ImageEnhance.Brightness(img).enhance(1.3)),
    "blur2": lambda img, _i: _png(img.filter(ImageFilter.GaussianBlur(2))),
    "caption": _caption,
    "pad8black": lambda img, _i: _png(_pad(img, 0.08, (0, 0, 0))),
    "pad8white": lambda img, _i: _png(_pad(img, 0.08, (255, 255, 255))),
    "mirror": lambda img, _i: _png(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    "pad8jpeg": lambda img, _i: _jpeg(_pad(img, 0.08, (0, 0, 0)), 50),
}
INFORMATIONAL: dict[str, Edit] = {
    "crop7": _crop(0.07),
    "rotate90": lambda img, _i: _png(img.transpose(Image.Transpose.ROTATE_90)),
}
DIHEDRAL_ONLY = {"rotate90"}


def plain_pdq(data: bytes) -> NDArray[np.uint64]:
    """The baseline: pdqhash on the full RGB decode, as 4 uint64 words."""
    with Image.open(io.BytesIO(data)) as img:
        pixels = np.asarray(img.convert("RGB"))
    bits, _quality = pdqhash.compute(pixels)
    return np.packbits(bits.astype(np.uint8)).view(np.uint64)


def hamming(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> NDArray[np.int64]:
    """Distances between every row of ``a`` (n, 4) and every row of ``b`` (m, 4): (n, m)."""
    return np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(axis=-1, dtype=np.int64)


def machine() -> dict[str, object]:
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }


def run(
    photos: list[Photo], home: Path, timing_repeats: int, edits: set[str] | None = None
) -> dict[str, object]:
    settings = load_settings(env={}, overrides={"home": home / "now"})
    before = load_settings(
        env={},
        overrides={"home": home / "before", "trim_borders": False, "match_mirrored": False},
    )
    originals = [_png(Image.fromarray(p.pixels)) for p in photos]
    names = [p.name for p in photos]
    groups = np.array([p.photo for p in photos])
    row = {name: i for i, name in enumerate(names)}
    result: dict[str, object] = {"photos": len(photos), "machine_start": machine()}
    with Amparo(settings) as app, Amparo(before) as app_before:
        app.banks.create(BankInfo(name="main"), actor="bench")
        app.banks.create(BankInfo(name="dihedral", dihedral=True), actor="bench")
        start = time.perf_counter()
        bank_pdq: list[str] = []
        for name, data in zip(names, originals, strict=True):
            hashes, report = app.banks.add_media("main", data, source_id=name, actor="bench")
            app.banks.add_media("dihedral", data, source_id=name, actor="bench")
            if "pdq" not in report.signals:
                raise SystemExit(f"{name}: no PDQ entry ({report.not_added})")
            bank_pdq.append(hashes.pdq or "")
        result["add_seconds_per_photo"] = round((time.perf_counter() - start) / len(photos), 4)
        bank_words = hexes_to_array(bank_pdq).view(np.uint64)
        near = hamming(bank_words, bank_words) <= DEFAULT_THRESHOLD
        np.fill_diagonal(near, False)
        same = groups[:, None] == groups[None, :]
        result["original_pairs_within_threshold"] = {
            "all": int(near.sum() // 2),
            "different_photos": int((near & ~same).sum() // 2),
        }
        plain_orig = np.stack([plain_pdq(d) for d in originals])
        dihedral_main = app.checks.wants_dihedral(["main"])
        rows: dict[str, dict[str, object]] = {}
        for edit_name, edit in {**EDITS, **INFORMATIONAL}.items():
            if edits is not None and edit_name not in edits:
                continue
            bank = "dihedral" if edit_name in DIHEDRAL_ONLY else "main"
            dihedral = app.checks.wants_dihedral([bank]) if bank != "main" else dihedral_main
            copies = [edit(Image.fromarray(p.pixels), i) for i, p in enumerate(photos)]
            hashed = [app.checks.hash_bytes(c, dihedral=dihedral) for c in copies]
            results = app.checks.match_hashes(hashed, [bank])
            found = np.zeros(len(photos), dtype=bool)
            paths: collections.Counter[str] = collections.Counter()
            false_all = false_diff = 0
            for i, res in enumerate(results):
                pdq_matches = [m for m in res.matches if m.signal_type == "pdq"]
                own = [m for m in pdq_matches if m.source_id == names[i]]
                if own:
                    found[i] = True
                    paths[own[0].path] += 1
                others = {
                    row[m.source_id]
                    for m in pdq_matches
                    if m.source_id in row and m.source_id != names[i]
                }
                false_all += len(others)
                false_diff += sum(1 for j in others if groups[j] != groups[i])
            plain_copy = np.stack([plain_pdq(c) for c in copies])
            dist = hamming(plain_copy, plain_orig)
            within = dist <= DEFAULT_THRESHOLD
            plain_found = np.diagonal(within).copy()
            np.fill_diagonal(within, False)
            low = sum(1 for h in hashed if (h.pdq_quality or 0) < settings.pdq_min_quality)
            rows[edit_name] = {
                "informational": edit_name in INFORMATIONAL,
                "plain_recall": float(plain_found.mean()),
                "amparo_recall": float(found.mean()),
                "paths": dict(paths),
                "copies_below_min_quality": low,
                "amparo_unrelated_all": false_all,
                "amparo_unrelated_different_photos": false_diff,
                "plain_unrelated_all": int(within.sum()),
                "plain_unrelated_different_photos": int((within & ~same).sum()),
            }
            print(
                f"{edit_name}: plain {plain_found.mean():.3f} amparo {found.mean():.3f} "
                f"{dict(paths)}",
                file=sys.stderr,
            )
            missed = [names[i] for i in np.flatnonzero(~found)]
            more = f" and {len(missed) - 30} more" if len(missed) > 30 else ""
            print(f"{edit_name}: missed {', '.join(missed[:30]) or 'none'}{more}", file=sys.stderr)
        result["edits"] = rows
        main_rows = [r for r in rows.values() if not r["informational"]]
        result["mean_plain_recall"] = float(np.mean([r["plain_recall"] for r in main_rows]))
        result["mean_amparo_recall"] = float(np.mean([r["amparo_recall"] for r in main_rows]))
        n = len(photos)
        result["unrelated_pairs"] = {
            "per_edit_all": n * (n - 1),
            "per_edit_different_photos": int((~same).sum()),
            "edits": len(main_rows),
        }
        result["timing"] = _timing(app, app_before, originals, timing_repeats)
    result["machine_end"] = machine()
    return result


def _timing(
    app: Amparo, app_before: Amparo, originals: list[bytes], repeats: int
) -> dict[str, float]:
    """Seconds per photo hashing the originals, now and before, interleaved so both see
    the same load; the median of ``repeats`` passes."""
    now: list[float] = []
    old: list[float] = []
    dihedral = app.checks.wants_dihedral(["main"])
    for _ in range(repeats):
        for which, target in ((app, now), (app_before, old)):
            start = time.perf_counter()
            for data in originals:
                which.checks.hash_bytes(data, dihedral=dihedral)
            target.append((time.perf_counter() - start) / len(originals))
    ms_now, ms_old = float(np.median(now)) * 1000, float(np.median(old)) * 1000
    return {"ms_now": ms_now, "ms_before": ms_old, "ratio": ms_now / ms_old}


def markdown(result: dict[str, object]) -> str:
    edits: dict[str, dict[str, object]] = result["edits"]  # type: ignore[assignment]
    pairs: dict[str, int] = result["unrelated_pairs"]  # type: ignore[assignment]
    timing: dict[str, float] = result["timing"]  # type: ignore[assignment]
    start, end = result["machine_start"], result["machine_end"]
    lines = [
        f"{result['photos']} photos ({result.get('sources')}), {start['date']} to "  # type: ignore[index]
        f"{end['date']}, {start['cores']} cores, load average {start['load_average']} at the "  # type: ignore[index]
        f"start and {end['load_average']} at the end.",  # type: ignore[index]
        "",
        "| edit | plain PDQ recall | Amparo recall | Amparo paths | unrelated matches "
        "plain / Amparo (different photos) | copies below quality 50 |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for name, r in edits.items():
        label = f"{name} (informational)" if r["informational"] else name
        paths = ", ".join(f"{k} {v}" for k, v in sorted(r["paths"].items())) or "-"  # type: ignore[attr-defined]
        lines.append(
            f"| {label} | {r['plain_recall']:.1%} | {r['amparo_recall']:.1%} | {paths} | "
            f"{r['plain_unrelated_different_photos']} / {r['amparo_unrelated_different_photos']} "
            f"| {r['copies_below_min_quality']} |"
        )
    lines.append(
        f"| **mean of the {pairs['edits']} edits** | **{result['mean_plain_recall']:.1%}** | "
        f"**{result['mean_amparo_recall']:.1%}** | | | |"
    )
    main = [r for r in edits.values() if not r["informational"]]
    total_all = pairs["per_edit_all"] * pairs["edits"]
    total_diff = pairs["per_edit_different_photos"] * pairs["edits"]
    sums = {k: sum(int(r[k]) for r in main) for k in main[0] if k.endswith(("_all", "_photos"))}  # type: ignore[call-overload]
    lines += [
        "",
        "| unrelated pairs (copy of B, original A != B) | pairs | plain PDQ matches | "
        "Amparo matches |",
        "|---|---:|---:|---:|",
        f"| all | {total_all:,} | {sums['plain_unrelated_all']} "
        f"({sums['plain_unrelated_all'] / total_all:.4%}) | {sums['amparo_unrelated_all']} "
        f"({sums['amparo_unrelated_all'] / total_all:.4%}) |",
        f"| A and B from different photos | {total_diff:,} | "
        f"{sums['plain_unrelated_different_photos']} "
        f"({sums['plain_unrelated_different_photos'] / total_diff:.4%}) | "
        f"{sums['amparo_unrelated_different_photos']} "
        f"({sums['amparo_unrelated_different_photos'] / total_diff:.4%}) |",
        "",
        f"Originals already within {DEFAULT_THRESHOLD} bits of each other (Amparo's PDQ): "
        f"{result['original_pairs_within_threshold']}.",
        f"Hashing a photo without borders: {timing['ms_now']:.2f} ms now, "
        f"{timing['ms_before']:.2f} ms with trim_borders and match_mirrored off "
        f"(ratio {timing['ratio']:.2f}). Adding a photo to both banks (plain and dihedral): "
        f"{float(result['add_seconds_per_photo']) * 1000:.1f} ms.",  # type: ignore[arg-type]
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=None, help="the first N of the corpus")
    parser.add_argument("--quick", action="store_true", help="40 photos, one timing pass")
    parser.add_argument(
        "--edits",
        help="comma-separated edit names to run (default: all); the mean covers those run",
    )
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    limit = args.photos if args.photos is not None else (40 if args.quick else None)
    photos = benign_photos(limit)
    sources = collections.Counter(p.source for p in photos)
    print(f"{len(photos)} photos: {dict(sources)}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        wanted = set(args.edits.split(",")) if args.edits else None
        unknown = (wanted or set()) - {*EDITS, *INFORMATIONAL}
        if unknown:
            parser.error(f"unknown edits: {', '.join(sorted(unknown))}")
        result = run(photos, Path(tmp), timing_repeats=1 if args.quick else 3, edits=wanted)
    result["sources"] = dict(sources)
    result["distinct_photos"] = len({p.photo for p in photos})
    table = markdown(result)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
