"""Decode memory: hostile images far below ``max_image_pixels`` that decode to gigabytes are
refused (or decoded within the bound) before the pixels are decoded, measured as the peak RSS
of a subprocess; and concurrent decodes share one process-wide budget instead of multiplying.

The probe PNGs are written chunk by chunk from a zlib stream of identical rows, so building
them never needs the memory their decode would."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amparo.config import Settings
from amparo.errors import MediaTooLargeError
from amparo.hashing import video_limits
from amparo.media.decode import (
    DEFAULT_MAX_DECODE_MEMORY,
    DecodeBudget,
    decode_image,
    decode_memory,
)

SIDE = 13_000  # 169 Mpx, under the default max_image_pixels (178,956,970)
MiB = 1024 * 1024


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_flat_png(path: Path, side: int, *, colour_type: int, channels: int) -> None:
    """A side x side PNG of one colour (8 bits a sample), streamed to ``path``."""
    row = b"\x00" + b"\x80" * (side * channels)  # filter byte 0, then the samples
    compressor = zlib.compressobj(9)
    with path.open("wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n")
        out.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, colour_type, 0, 0, 0)))
        pending = b""
        for _ in range(side):
            pending += compressor.compress(row)
            if len(pending) > 1 << 20:
                out.write(_chunk(b"IDAT", pending))
                pending = b""
        pending += compressor.flush()
        out.write(_chunk(b"IDAT", pending))
        out.write(_chunk(b"IEND", b""))


_PROBE = """
import io, sys
from PIL import Image
from amparo.hashing import hash_media

def status(field):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(field))

warm = io.BytesIO()
Image.new("RGB", (64, 64), (9, 99, 199)).save(warm, "PNG")
hash_media(warm.getvalue())  # imports and first-use set-up are the worker's, not the decode's
data = open(sys.argv[1], "rb").read()
# What the decode adds to the worker's peak: VmHWM (reset here) over the size before it. Not
# ru_maxrss, which Linux carries over fork and exec from a large parent.
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
base = status("VmRSS")
result = hash_media(data, max_memory=int(sys.argv[2]))
print(status("VmHWM") - base, result.pdq or "-", result.error or "-", sep="\\t")
"""


def _probe(path: Path, max_memory: int) -> tuple[int, str, str]:
    """Hash ``path`` in a fresh interpreter under a 3 GiB address-space cap (so a
    regression fails fast instead of taking the machine's memory); how much the hashing raised
    the process's peak RSS, the PDQ and the error."""
    limit = 3 * 1024 * MiB  # address space, not RSS: numpy and its libraries map ~1 GiB

    def cap() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), str(max_memory)],
        capture_output=True,
        text=True,
        preexec_fn=cap,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rss, pdq, error = done.stdout.strip().split("\t")
    return int(rss), pdq, error


@pytest.mark.slow
def test_rgba_png_of_169_mpx_is_refused_within_the_memory_bound(tmp_path: Path) -> None:
    path = tmp_path / "rgba.png"
    write_flat_png(path, SIDE, colour_type=6, channels=4)
    assert path.stat().st_size < 2 * MiB  # ~657 KB on disk, ~4 GB decoded before the fix
    rss, pdq, error = _probe(path, DEFAULT_MAX_DECODE_MEMORY)
    assert rss < DEFAULT_MAX_DECODE_MEMORY
    assert pdq == "-"
    assert "max_decode_memory" in error


@pytest.mark.slow
def test_greyscale_png_of_169_mpx_decodes_within_the_memory_bound(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    write_flat_png(path, SIDE, colour_type=0, channels=1)
    rss, pdq, error = _probe(path, DEFAULT_MAX_DECODE_MEMORY)
    assert rss < DEFAULT_MAX_DECODE_MEMORY, f"peak RSS rose {rss / MiB:.0f} MiB"
    assert error == "-" and len(pdq) == 64  # decoded (1 byte a pixel), not refused


@pytest.mark.slow
def test_greyscale_png_over_a_lower_bound_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    write_flat_png(path, SIDE, colour_type=0, channels=1)
    rss, pdq, error = _probe(path, 256 * MiB)
    assert rss < 256 * MiB
    assert pdq == "-" and "max_decode_memory" in error


def _png(mode: str, size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 128).save(out, "PNG")
    return out.getvalue()


def test_estimate_counts_the_decoded_mode_not_the_file_size() -> None:
    rgba = Image.open(io.BytesIO(_png("RGBA", (1000, 1000))))
    grey = Image.open(io.BytesIO(_png("L", (1000, 1000))))
    # Pillow stores RGBA in 4 bytes a pixel, L in 1; output luma adds 1; RGB output 3.
    assert decode_memory(rgba, "png", "L") - decode_memory(grey, "png", "L") == 3 * 10**6
    assert decode_memory(grey, "png", "RGB") - decode_memory(grey, "png", "L") == 2 * 10**6
    # An EXIF orientation turns the output (or TIFF's loaded image): a second copy of it.
    turned = decode_memory(grey, "png", "L", transposed=True) - decode_memory(grey, "png", "L")
    assert turned == 10**6


@pytest.mark.parametrize(("fmt", "mode"), [("GIF", "P"), ("TIFF", "RGB"), ("WEBP", "RGBA")])
def test_every_format_is_bounded(fmt: str, mode: str) -> None:
    out = io.BytesIO()
    Image.new(mode, (3000, 3000)).save(out, fmt)
    with pytest.raises(MediaTooLargeError, match="max_decode_memory") as caught:
        decode_image(out.getvalue(), mode="L", max_memory=40 * MiB)
    assert caught.value.hint and "AMPARO_MAX_DECODE_MEMORY" in caught.value.hint
    assert decode_image(out.getvalue(), mode="L").pixels.shape == (3000, 3000)


def test_large_jpeg_is_estimated_at_its_reduced_decode_size() -> None:
    out = io.BytesIO()
    Image.new("RGB", (8000, 6000), (10, 200, 30)).save(out, "JPEG")
    # 48 Mpx in full would be ~230 MiB; the DCT-reduced decode fits a 64 MiB bound.
    decoded = decode_image(out.getvalue(), mode="L", max_memory=64 * MiB)
    assert decoded.width == 8000 and decoded.pixels.shape[0] < 1500


def test_strip_conversion_matches_a_whole_image_conversion() -> None:
    rng = np.random.default_rng(5)
    rgba = Image.fromarray(rng.integers(0, 256, (700, 300, 4), dtype=np.uint8), mode="RGBA")
    out = io.BytesIO()
    rgba.save(out, "PNG")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    expected = np.asarray(Image.alpha_composite(background, rgba).convert("RGB").convert("L"))
    assert np.array_equal(decode_image(out.getvalue(), mode="L").pixels, expected)


def test_concurrent_decodes_wait_for_the_budget_instead_of_multiplying() -> None:
    data = _png("L", (512, 512))
    need = decode_memory(Image.open(io.BytesIO(data)), "png", "L")
    budget = DecodeBudget(need)
    results: list[tuple[int, ...]] = []

    def decode() -> None:
        results.append(decode_image(data, mode="L", max_memory=need, budget=budget).pixels.shape)

    with budget.reserve(need):  # another decode holds the whole budget
        worker = threading.Thread(target=decode)
        worker.start()
        assert budget.wait_for("waiting")
        assert budget.running == 1 and not results  # waiting, not decoding alongside
    worker.join(60)
    assert results == [(512, 512)]
    assert budget.in_use == 0 and budget.running == 0


def test_small_decodes_share_the_budget_at_once() -> None:
    budget = DecodeBudget(100)
    with budget.reserve(40), budget.reserve(40):
        assert budget.running == 2 and budget.in_use == 80


def test_video_frames_are_bounded_by_the_decode_memory() -> None:
    assert video_limits(Settings()).max_pixels == 8192 * 4320  # 8K fits 512 MiB
    small = video_limits(Settings(max_decode_memory=64 * MiB)).max_pixels
    assert small < 1920 * 1080 * 3 and small * 1.5 * 8 <= 64 * MiB


def test_progressive_jpeg_counts_its_full_size_coefficient_buffer() -> None:
    # libjpeg keeps every DCT coefficient of a progressive JPEG (2 bytes a sample) at full
    # size, even when decoding at 1/8 scale.
    baseline, progressive = io.BytesIO(), io.BytesIO()
    image = Image.new("RGB", (6000, 4000), (10, 200, 30))
    image.save(baseline, "JPEG")
    image.save(progressive, "JPEG", progressive=True)
    assert decode_image(baseline.getvalue(), mode="L", max_memory=64 * MiB).width == 6000
    with pytest.raises(MediaTooLargeError, match="max_decode_memory"):
        decode_image(progressive.getvalue(), mode="L", max_memory=64 * MiB)
    assert decode_image(progressive.getvalue(), mode="L").width == 6000


def test_review_video_frames_are_bounded_like_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    import amparo.media.video as video
    from amparo.review.media import shielded_video

    seen: list[int] = []

    def refuse(data: bytes, *, limits: video.VideoLimits) -> None:
        seen.append(limits.max_pixels)
        raise MediaTooLargeError("stop")

    monkeypatch.setattr(video, "open_video", refuse)
    with pytest.raises(MediaTooLargeError):
        shielded_video(b"", max_pixels=178_956_970)
    assert seen == [video.VideoLimits.max_pixels]  # 8K, not max_image_pixels


def test_review_renders_decode_under_the_configured_bound() -> None:
    from amparo.review import media as review_media

    buf = io.BytesIO()
    Image.new("RGBA", (2000, 2000), (1, 2, 3, 4)).save(buf, "PNG")
    for render in (review_media.shielded, review_media.clear):
        with pytest.raises(MediaTooLargeError, match="max_decode_memory"):
            render(buf.getvalue(), max_pixels=10**9, max_memory=4 * MiB)
        assert render(buf.getvalue(), max_pixels=10**9, max_memory=256 * MiB).data
