"""Decode memory is bounded by max_decode_memory: the probe files of the hardening review
(a 657 KB RGBA PNG claiming 169 megapixels took ~4 GB to decode) are refused before any pixel
is decoded, images under the bound really stay under it, and concurrent decodes share it.

Peaks are measured in a fresh subprocess: VmHWM (reset through /proc/self/clear_refs) less the
resident size before the decode."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from amparo.errors import MediaTooLargeError
from amparo.media.decode import DecodeBudget, _oriented, decode_image, decode_memory

MIB = 1024 * 1024

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="peak RSS is read from Linux's /proc"
)

_MEASURE = r"""
import json, sys
from amparo.hashing import hash_media

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

data = open(sys.argv[1], "rb").read()
limit = int(sys.argv[2])
hash_media(b"\x89PNG\r\n\x1a\n", max_decode_memory=limit)  # imports and warm-up
base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
result = hash_media(data, max_pixels=10**9, max_decode_memory=limit)
print(json.dumps({"peak": status("VmHWM") - base, "pdq": result.pdq, "error": result.error}))
"""


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _flat_png(path: Path, width: int, height: int, *, colour_type: int, channels: int) -> Path:
    """A one-colour PNG of any size, written row by row (no decoder holds it in memory)."""
    row = b"\x00" + b"\x00" * (width * channels)
    packer = zlib.compressobj(9)
    parts = []
    rows_per = max(1, (8 * MIB) // len(row))
    for done in range(0, height, rows_per):
        parts.append(packer.compress(row * min(rows_per, height - done)))
    parts.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )
    return path


def _measure(path: Path, limit: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(limit)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


@pytest.mark.slow
@pytest.mark.parametrize(("name", "colour_type", "channels"), [("rgba", 6, 4), ("grey", 0, 1)])
def test_the_169_megapixel_probe_pngs_are_refused_within_the_bound(
    tmp_path: Path, name: str, colour_type: int, channels: int
) -> None:
    probe = _flat_png(
        tmp_path / f"{name}.png", 13_000, 13_000, colour_type=colour_type, channels=channels
    )
    assert probe.stat().st_size < 1024 * 1024  # a small upload ...
    result = _measure(probe, 512 * MIB)
    assert result["pdq"] is None and "max_decode_memory" in str(result["error"])
    assert isinstance(result["peak"], int) and result["peak"] < 512 * MIB


def _image(mode: str, side: int) -> Image.Image:
    rng = np.random.default_rng(7)
    cells = rng.integers(0, 255, (side // 40 + 1, side // 40 + 1, 4), dtype=np.uint8)
    big = np.kron(cells, np.ones((40, 40, 1), dtype=np.uint8))[:side, :side]
    if mode == "RGBA":
        return Image.fromarray(big, "RGBA")
    if mode == "RGB":
        return Image.fromarray(np.ascontiguousarray(big[..., :3]), "RGB")
    if mode == "L":
        return Image.fromarray(np.ascontiguousarray(big[..., 0]), "L")
    if mode == "I;16":
        return Image.fromarray(big[..., 0].astype(np.uint16) * 200)
    raise AssertionError(mode)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("RGBA", "PNG"), ("RGB", "PNG"), ("L", "PNG"), ("I;16", "PNG"), ("RGB", "WEBP")],
)
def test_images_just_under_the_bound_decode_and_stay_under_it(
    tmp_path: Path, mode: str, fmt: str
) -> None:
    limit = 64 * MIB
    image = _image(mode, 64)
    per_pixel = decode_memory(1000, 1000, image.mode, fmt.lower(), "L") / 1_000_000
    side = int((limit / per_pixel) ** 0.5) - 64
    image = _image(mode, side)
    path = tmp_path / f"big.{fmt.lower()}"
    image.save(path, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    result = _measure(path, limit)
    assert result["error"] is None and result["pdq"] is not None, result
    assert isinstance(result["peak"], int) and result["peak"] <= limit, result["peak"] / MIB


def test_a_decode_over_the_budget_is_refused_before_decoding() -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (2000, 2000), (1, 2, 3, 4)).save(buf, "PNG")
    with pytest.raises(MediaTooLargeError, match="max_decode_memory") as refused:
        decode_image(buf.getvalue(), mode="L", max_memory=8 * MIB)
    assert refused.value.hint is not None and "AMPARO_MAX_DECODE_MEMORY" in refused.value.hint
    assert decode_image(buf.getvalue(), mode="L", max_memory=64 * MIB).pixels.shape == (2000, 2000)


def test_concurrent_decodes_wait_for_their_share_of_the_budget() -> None:
    budget = DecodeBudget(100)
    second_in = threading.Event()
    release_first = threading.Event()

    def second() -> None:
        with budget.reserve(60):
            second_in.set()

    with budget.reserve(60):
        thread = threading.Thread(target=second)
        thread.start()
        assert not second_in.wait(0.2), "two 60-byte decodes ran at once in a 100-byte budget"
        assert budget.in_use == 60
        release_first.set()
    thread.join(5)
    assert second_in.is_set() and budget.in_use == 0
    with pytest.raises(MediaTooLargeError), budget.reserve(101):
        pass
    with budget.reserve(40), budget.reserve(60):  # what fits runs at once
        assert budget.in_use == 100


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_is_applied_as_pillow_does(orientation: int) -> None:
    pixels = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    image = Image.fromarray(pixels, "RGB")
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    image.save(buf, "PNG", exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue()))))
    assert np.array_equal(_oriented(pixels, orientation), expected)
