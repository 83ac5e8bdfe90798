"""``python -m amparo.demo``: the whole job on benign sample photos, with nothing to set up.

Builds a bank from scikit-image's bundled sample photos (benign pictures of an astronaut, a
cat, a coffee cup, ...), writes modified copies of some of them (resized, re-compressed,
cropped, greyscale, captioned, one inside a zip) mixed with unrelated photos into a folder,
scans that folder and prints which files matched which entry at what distance.

A shell, like ``cli/`` and ``api/``: it drives the core through its public API (``Amparo``,
the scan engine, rules) and nothing in the core imports it, so the runtime package does not
depend on the demo or its optional dependencies (scikit-image).
"""

from __future__ import annotations

import argparse
import importlib
import io
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageOps
from rich.console import Console
from rich.table import Table

from amparo.actions.rules import Rule
from amparo.app import Amparo
from amparo.banks.model import BankInfo
from amparo.config import load_settings
from amparo.scan import ItemRecord, ScanOptions, scan_paths, write_report

KNOWN = ("astronaut", "chelsea", "coffee", "rocket", "camera", "motorcycle_left")
UNRELATED = ("horse", "brick", "grass", "gravel", "moon", "page", "text", "coins", "hubble")


def _photos() -> dict[str, NDArray[np.uint8]]:
    try:
        data: Any = importlib.import_module("skimage.data")
    except ImportError as exc:  # pragma: no cover - the demo extra installs it
        raise SystemExit("the demo needs scikit-image: pip install 'amparo[demo]'") from exc
    names = {"motorcycle_left": "stereo_motorcycle", "hubble": "hubble_deep_field"}
    photos = {}
    for name in KNOWN + UNRELATED:
        pixels = getattr(data, names.get(name, name))()
        if name == "motorcycle_left":
            pixels = pixels[0]
        elif name == "horse":  # a boolean silhouette
            pixels = (~pixels).astype(np.uint8) * 255
        photos[name] = np.asarray(pixels, dtype=np.uint8)
    return photos


def _encode(image: Image.Image, fmt: str = "JPEG", **options: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.save(buf, fmt, **options)
    return buf.getvalue()


def _variants(name: str, image: Image.Image) -> dict[str, bytes]:
    w, h = image.size
    captioned = image.convert("RGB")
    ImageDraw.Draw(captioned).text((10, h - 30), "benign demo copy", fill=(255, 255, 0))
    dx, dy = int(w * 0.012), int(h * 0.012)
    return {
        f"{name}-half.jpg": _encode(image.resize((w // 2, h // 2)), quality=85),
        f"{name}-q40.jpg": _encode(image, quality=40),
        f"{name}-cropped.png": _encode(image.crop((dx, dy, w - dx, h - dy)), "PNG"),
        f"{name}-grey.jpg": _encode(ImageOps.grayscale(image), quality=90),
        f"{name}-caption.jpg": _encode(captioned, quality=90),
    }


def build(out: Path) -> tuple[Amparo, Path]:
    """Create the demo bank and the folder to scan under ``out``."""
    if out.exists():
        shutil.rmtree(out)
    scan_dir = out / "to-scan"
    scan_dir.mkdir(parents=True)
    amparo = Amparo(load_settings(env={}, overrides={"home": out / "home"}))
    amparo.banks.create(
        BankInfo(
            name="demo-known",
            description="Benign sample photos from scikit-image, standing in for a hash list",
            source="scikit-image sample data",
            supplier="Amparo demo",
        )
    )
    # A rule, as a platform or hotline would set one: every find goes to human review, its
    # file preserved (encrypted) in the evidence store for the reviewer.
    amparo.actions.add_rule(
        Rule.from_json(
            {
                "name": "demo-review",
                "description": "Send every find of the demo bank to human review",
                "conditions": {"banks": ["demo-known"]},
                "actions": [{"type": "review"}],
            }
        ),
        actor="demo",
    )
    photos = _photos()
    for name in KNOWN:
        original = _encode(Image.fromarray(photos[name]), "PNG")
        amparo.banks.add_media("demo-known", original, category="demo", source_id=name)
    for i, name in enumerate(KNOWN[:4]):
        for file_name, blob in list(_variants(name, Image.fromarray(photos[name])).items())[
            i % 2 :: 2
        ]:
            (scan_dir / file_name).write_bytes(blob)
    with zipfile.ZipFile(scan_dir / "archive.zip", "w") as zf:
        zf.writestr(
            "inside/camera-copy.jpg", _encode(Image.fromarray(photos["camera"]), quality=60)
        )
        zf.writestr("inside/coins.png", _encode(Image.fromarray(photos["coins"]), "PNG"))
    for name in UNRELATED:
        (scan_dir / f"{name}.jpg").write_bytes(_encode(Image.fromarray(photos[name]), quality=90))
    (scan_dir / "notes.txt").write_text("not an image: digested, no perceptual hash\n")
    return amparo, scan_dir


def _relative(path: str, root: Path) -> str:
    prefix = str(root) + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="work folder")
    args = parser.parse_args(argv)
    console = Console()
    console.print("[bold]Amparo demo[/] — benign sample photos only\n")
    amparo, scan_dir = build(args.out)
    bank = amparo.banks.get("demo-known")
    console.print(
        f"Bank [cyan]{bank.name}[/]: {bank.entry_count} entries (PDQ + MD5 of {len(KNOWN)} photos)"
    )
    report_path = args.out / "report.html"
    records: list[ItemRecord] = []
    console.print(f"Scanning [cyan]{scan_dir}[/] ...")
    result = scan_paths(amparo, [scan_dir], ScanOptions(), on_record=records.append)
    with report_path.open("w", encoding="utf-8") as out:
        write_report(result, out, "html")
    table = Table("file", "matched photo (entry)", "signal", "distance", title="Matches")
    for record in sorted(records, key=lambda r: r.path):
        for match in record.matches:
            table.add_row(
                _relative(record.path, scan_dir),
                f"{match.get('source_id')} ({match['entry_id']})",
                str(match["signal_type"]),
                str(match["distance"]),
            )
    console.print(table)
    unmatched = sorted(_relative(r.path, scan_dir) for r in records if not r.matches)
    console.print("[bold]No match:[/] " + ", ".join(unmatched))
    totals = result.summary()
    console.print(
        f"\n{totals['files_seen']} files scanned, {totals['matched_files']} matched, "
        f"{totals['errors']} errors, in {totals['elapsed_s']} s; exit code {totals['exit_code']}"
    )
    console.print(f"\nFull report: {report_path}")
    _acting(console, amparo, args.out / "home")
    amparo.close()
    return 0


def _acting(console: Console, amparo: Amparo, home: Path) -> None:
    """What the rule did with the finds, and how a reviewer would look at them."""
    cases = amparo.cases.queue("waiting", limit=1000)
    items = sum(len(c.items) for c in cases)
    kept = amparo.evidence.list(limit=1000)
    amparo.audit.flush()  # sign what the demo wrote, then check it
    verdict = amparo.audit.verify()
    console.print(
        f"\nRule [cyan]demo-review[/]: {len(cases)} case(s) with {items} item(s) wait for human "
        f"review; {len(kept)} file(s) preserved, encrypted, in the evidence store "
        "(files that matched nothing were not kept)."
    )
    console.print(
        f"Audit log: {verdict.entries} hash-chained entries, "
        + (verdict.summary() + "." if verdict.ok else f"[red]{verdict.summary()}[/]")
    )
    console.print(
        "\nTo review them (media blurred and greyscale until you reveal one):\n"
        f"  amparo --home {home} keys create me --scope reviewer\n"
        f"  amparo --home {home} serve    # then open http://127.0.0.1:8080/review"
    )


if __name__ == "__main__":
    raise SystemExit(main())
