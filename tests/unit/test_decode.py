"""Safe decoding: every supported format, sniffing by content, orientation, alpha, and the
right error for damaged, empty, oversized and non-image input. Images are made in memory."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amparo.errors import CorruptMediaError, MediaTooLargeError, UnsupportedMediaError
from amparo.hashing import hash_media
from amparo.media.decode import PDQ_MIN_SIDE, decode_image
from amparo.media.sniff import sniff
from amparo.signals.pdq import DEFAULT_THRESHOLD, PdqSignal


def _gradient(width: int = 96, height: int = 64) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=2)
    return Image.fromarray(pixels.astype(np.uint8), mode="RGB")


def _photo() -> Image.Image:
    data = pytest.importorskip("skimage.data")
    return Image.fromarray(data.astronaut())


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [
        ("JPEG", "jpeg"),
        ("PNG", "png"),
        ("GIF", "gif"),
        ("WEBP", "webp"),
        ("BMP", "bmp"),
        ("TIFF", "tiff"),
    ],
)
def test_every_format_decodes(fmt: str, media_type: str) -> None:
    image = _gradient()
    decoded = decode_image(_encode(image, fmt))
    assert decoded.media_type == media_type
    assert (decoded.width, decoded.height) == image.size
    assert decoded.pixels.shape == (image.height, image.width, 3)
    assert decoded.pixels.dtype == np.uint8
    luma = decode_image(_encode(image, fmt), mode="L")
    assert luma.pixels.shape == (image.height, image.width)


def test_gif_decodes_its_first_frame() -> None:
    red = Image.new("RGB", (32, 32), (255, 0, 0))
    blue = Image.new("RGB", (32, 32), (0, 0, 255))
    data = _encode(red, "GIF", save_all=True, append_images=[blue], duration=100)
    pixels = decode_image(data).pixels
    assert tuple(pixels[16, 16]) == (255, 0, 0)


def test_type_is_sniffed_from_content_not_name(tmp_path: Path) -> None:
    misnamed = tmp_path / "holiday.png"
    misnamed.write_bytes(_encode(_gradient(), "JPEG"))
    data = misnamed.read_bytes()
    assert sniff(data[:512]) == "jpeg"
    assert decode_image(data).media_type == "jpeg"
    assert hash_media(data).media_type == "jpeg"


def test_exif_orientation_is_applied() -> None:
    upright = _photo()
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    tagged = _encode(stored, "JPEG", quality=90, exif=exif.tobytes())

    decoded = decode_image(tagged)
    assert decoded.pixels.shape[:2] == (upright.height, upright.width)

    tagged_pdq = hash_media(tagged).pdq
    upright_pdq = hash_media(_encode(upright, "JPEG", quality=90)).pdq
    stored_pdq = hash_media(_encode(stored, "JPEG", quality=90)).pdq
    assert tagged_pdq is not None and upright_pdq is not None and stored_pdq is not None
    assert PdqSignal.distance(tagged_pdq, upright_pdq) <= 10
    assert PdqSignal.distance(tagged_pdq, stored_pdq) > DEFAULT_THRESHOLD


def test_transparency_is_flattened_on_white() -> None:
    rgba = Image.new("RGBA", (40, 20), (255, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (0, 0, 20, 20))  # left half opaque black
    pixels = decode_image(_encode(rgba, "PNG")).pixels
    assert tuple(pixels[10, 30]) == (255, 255, 255)
    assert tuple(pixels[10, 5]) == (0, 0, 0)
    luma = decode_image(_encode(rgba, "PNG"), mode="L").pixels
    assert luma[10, 30] == 255 and luma[10, 5] == 0


def test_large_jpeg_is_decoded_reduced_but_reports_full_size() -> None:
    big = _photo().resize((2400, 2400))
    decoded = decode_image(_encode(big, "JPEG", quality=85), mode="L")
    assert (decoded.width, decoded.height) == (2400, 2400)
    assert PDQ_MIN_SIDE <= min(decoded.pixels.shape) < 2 * PDQ_MIN_SIDE


def test_truncated_jpeg_is_corrupt() -> None:
    data = _encode(_photo(), "JPEG", quality=90)
    with pytest.raises(CorruptMediaError):
        decode_image(data[: len(data) // 2])


def test_zero_bytes_are_not_an_image() -> None:
    with pytest.raises(UnsupportedMediaError):
        decode_image(b"")


def test_text_is_not_an_image() -> None:
    with pytest.raises(UnsupportedMediaError):
        decode_image(b"Dear colleague, please find attached the quarterly report.\n" * 20)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_png_claiming_huge_dimensions_is_refused_before_decoding() -> None:
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )
    with pytest.raises(MediaTooLargeError):
        decode_image(data)


def test_hashing_records_decode_errors_instead_of_raising() -> None:
    result = hash_media(b"not an image at all")
    assert result.pdq is None and result.error
    assert len(result.sha256) == 64


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_every_exif_orientation_matches_pillow(fmt: str) -> None:
    # Orientation is applied to the decoded array (no turned copy of Pillow's image); each of
    # the eight must agree with ImageOps.exif_transpose, TIFF's loader turning it itself too.
    from PIL import ImageOps

    pixels = np.random.default_rng(1).integers(0, 256, (7, 12, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        image = Image.fromarray(pixels)
        exif = image.getexif()
        exif[0x0112] = orientation
        out = io.BytesIO()
        image.save(out, fmt, exif=exif.tobytes(), **({"lossless": True} if fmt == "WEBP" else {}))
        reference = ImageOps.exif_transpose(Image.open(io.BytesIO(out.getvalue())))
        expected = np.asarray(reference.convert("RGB"))
        assert np.array_equal(decode_image(out.getvalue()).pixels, expected), orientation
