"""PDQ: Meta's 256-bit perceptual hash for photos, with its quality score.

Hashes are computed by ``pdqhash`` (Meta's C++ reference code) after one canonical
preprocessing, the same for bank entries and queries: luma (ITU-R 601, as PDQ defines it,
rounded to 8 bits), reduced with Pillow's antialiased bilinear filter so that the short side
is at most ``PDQ_CANONICAL_SIDE`` pixels. Hashes stay within a few bits of pdqhash on the
full-resolution RGB image (docs/benchmarks.md) at a fraction of the cost; mixing
preprocessing methods between a bank and its queries would cost 8-12 bits of the 31-bit
threshold.

Text form: 64 lowercase hex characters, most significant bit first, as python-threatexchange
and HMA write it. Distance: Hamming distance in bits (``hamming_matrix`` for many at once).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pdqhash
from numpy.typing import NDArray
from PIL import Image

from amparo.errors import InternalError, InvalidSignalError
from amparo.media.trim import find_trim, trim_shares
from amparo.signals.base import SignalType, register

PDQ_BITS = 256
PDQ_BYTES = 32
DEFAULT_THRESHOLD = 31
DEFAULT_MIN_QUALITY = 50
PDQ_CANONICAL_SIDE = 600
"""Short side, in pixels, that larger images are reduced to before hashing. At 600 the median
drift from a full-resolution hash is 0 bits (max 6) on the benchmark photos, and the reference
photos stay within 8 bits of the published hashes (540: 14 on one); below ~500 drift grows
quickly (448: median 4, 384: median 6)."""

DIHEDRAL_NAMES = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flip_plus1",
    "flip_minus1",
)
"""Names of ``pdqhash.compute_dihedral``'s eight hashes, in its order and naming. Its
``flipx`` is a reflection across the horizontal axis (upside down); ``flipy``, across the
vertical axis, is the left-right mirror (checked by hashing flipped photos,
tests/unit/test_trim.py)."""
MIRROR_INDEX = 5
"""Index in ``compute_dihedral``'s hashes (and ``DIHEDRAL_NAMES``) of the horizontal (left-right)
mirror, ``flipy``. It is within 0-18 bits of the PDQ of the mirrored picture itself (pdqhash's
downsampling is not exactly symmetric), against 100+ for any other of the eight."""

_HEX = re.compile(r"[0-9a-f]{64}")


@register
class PdqSignal(SignalType):
    name = "pdq"
    exact = False
    index_kind = "hamming"
    key_bytes = PDQ_BYTES
    examples: ClassVar[tuple[str, ...]] = (
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
        "358c86641a5269ab5b0db5f1b2315c1642cef9652c39b6ced9f646d91f071927",
    )

    @classmethod
    def normalize(cls, text: str) -> str:
        value = text.strip().lower()
        if not _HEX.fullmatch(value):
            raise InvalidSignalError(
                f"{text[:80]!r} is not a valid pdq hash",
                hint="a pdq hash is 64 hexadecimal characters (256 bits)",
            )
        return value

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return int((int(a, 16) ^ int(b, 16)).bit_count())


@dataclass(frozen=True)
class PdqHash:
    """A PDQ hash with its quality (0-100; below 50 the hash is too weak to match on)."""

    hex: str
    quality: int


def bits_to_hex(bits: NDArray[np.integer]) -> str:
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def hexes_to_array(values: list[str]) -> NDArray[np.uint8]:
    """Pack hex PDQ hashes into an ``(n, 32)`` uint8 array (the index's layout)."""
    if not values:
        return np.zeros((0, PDQ_BYTES), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(values)), dtype=np.uint8).reshape(-1, PDQ_BYTES)


def _popcount_by_table(words: NDArray[np.uint64]) -> NDArray[np.uint8]:
    """Set bits of each uint64, by a byte lookup table: for numpy < 2.0, which has no
    ``bitwise_count`` (pyproject allows numpy 1.26)."""
    as_bytes = np.ascontiguousarray(words).view(np.uint8).reshape(*words.shape, 8)
    counts: NDArray[np.uint8] = _BYTE_POPCOUNT[as_bytes].sum(axis=-1, dtype=np.uint8)
    return counts


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
_popcount = getattr(np, "bitwise_count", _popcount_by_table)


def hamming_matrix(queries: NDArray[np.uint8], hashes: NDArray[np.uint8]) -> NDArray[np.int16]:
    """``(q, n)`` Hamming distances between packed ``(q, 32)`` and ``(n, 32)`` PDQ hashes,
    computed over 64-bit words."""
    qw = np.ascontiguousarray(queries).view(np.uint64)
    hw = np.ascontiguousarray(hashes).view(np.uint64)
    out = np.zeros((qw.shape[0], hw.shape[0]), dtype=np.int16)
    for word in range(PDQ_BYTES // 8):
        xor = np.bitwise_xor(qw[:, word, None], hw[None, :, word])
        out += _popcount(xor).astype(np.int16)
    return out


def canonical_luma(pixels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The canonical PDQ input for RGB ``(h, w, 3)`` or luma ``(h, w)`` uint8 pixels.

    Luma as Pillow computes it (``(299 R + 587 G + 114 B) / 1000``, rounded), then, when the
    short side exceeds ``PDQ_CANONICAL_SIDE``, an antialiased bilinear reduction to that short
    side with the aspect ratio kept. Idempotent: canonical input comes back unchanged.
    """
    if pixels.ndim == 3:
        image = Image.fromarray(np.ascontiguousarray(pixels[:, :, :3]), mode="RGB").convert("L")
    elif pixels.ndim == 2:
        image = Image.fromarray(np.ascontiguousarray(pixels), mode="L")
    else:
        # Decoders hand over luma or RGB arrays only; another shape is a caller's bug.
        raise InternalError(f"expected (h, w) or (h, w, 3) pixels, got shape {pixels.shape}")
    height, width = pixels.shape[:2]
    short = min(width, height)
    if short > PDQ_CANONICAL_SIDE:
        scale = PDQ_CANONICAL_SIDE / short
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR)
    elif pixels.ndim == 2:
        return pixels
    return np.asarray(image, dtype=np.uint8)


def _as_pdqhash_input(luma: NDArray[np.uint8]) -> NDArray[np.uint8]:
    # pdqhash wants (h, w, 3) and weights the channels 0.299/0.587/0.114, which sum to 1: a
    # zero-stride view repeating the luma three times hashes it exactly, without a copy.
    luma = np.ascontiguousarray(luma)
    return np.lib.stride_tricks.as_strided(
        luma, shape=(*luma.shape, 3), strides=(*luma.strides, 0), writeable=True
    )


def pdq_from_pixels(pixels: NDArray[np.uint8]) -> PdqHash:
    """PDQ of an RGB ``(h, w, 3)`` or luma ``(h, w)`` uint8 image, canonically preprocessed."""
    bits, quality = pdqhash.compute(_as_pdqhash_input(canonical_luma(pixels)))
    return PdqHash(bits_to_hex(bits), int(quality))


def pdq_dihedral_from_pixels(pixels: NDArray[np.uint8]) -> tuple[list[str], int]:
    """The eight dihedral PDQ hashes (order of ``DIHEDRAL_NAMES``) and the quality."""
    all_bits, quality = pdqhash.compute_dihedral(_as_pdqhash_input(canonical_luma(pixels)))
    return [bits_to_hex(b) for b in all_bits], int(quality)


def pdq_and_mirror(luma: NDArray[np.uint8], *, mirror: bool) -> tuple[PdqHash, str | None]:
    """PDQ of canonical luma and, when ``mirror``, of its left-right mirror: both from one
    ``compute_dihedral`` (one downsampling and DCT), which takes what ``compute`` takes (40.8
    against 41.1 ms at 600x600, docs/detection.md, "Cost")."""
    if not mirror:
        bits, quality = pdqhash.compute(_as_pdqhash_input(luma))
        return PdqHash(bits_to_hex(bits), int(quality)), None
    all_bits, quality = pdqhash.compute_dihedral(_as_pdqhash_input(luma))
    return PdqHash(bits_to_hex(all_bits[0]), int(quality)), bits_to_hex(all_bits[MIRROR_INDEX])


@dataclass(frozen=True)
class TrimmedPdq:
    """PDQ of a picture with its borders, pads or caption bars trimmed."""

    pdq: PdqHash
    mirror: str | None
    """The trimmed picture's left-right mirrored PDQ, when asked for."""
    shares: tuple[float, float, float, float]
    """What was trimmed: shares of the height (top, bottom) and of the width (left, right)."""


def pdq_trimmed_from_luma(luma: NDArray[np.uint8], *, mirror: bool = True) -> TrimmedPdq | None:
    """PDQ of canonical luma (from :func:`canonical_luma`) with the borders, pads and caption
    bars :func:`amparo.media.trim.find_trim` finds trimmed; None when it finds none, or when
    what is left is too weak to match on (quality below ``DEFAULT_MIN_QUALITY``)."""
    borders = find_trim(luma)
    if not borders:
        return None
    pdq, mirrored = pdq_and_mirror(np.ascontiguousarray(borders.crop(luma)), mirror=mirror)
    if pdq.quality < DEFAULT_MIN_QUALITY:
        return None
    return TrimmedPdq(pdq, mirrored, trim_shares(borders, *luma.shape[:2]))


def pdq_trimmed_from_pixels(pixels: NDArray[np.uint8], *, mirror: bool = True) -> TrimmedPdq | None:
    """The trimmed PDQ of an RGB ``(h, w, 3)`` or luma ``(h, w)`` uint8 image, with the same
    canonical preprocessing as :func:`pdq_from_pixels`: for bank entries and queries alike, so
    a trimmed query meets a trimmed entry (and a plain one) on equal terms."""
    return pdq_trimmed_from_luma(canonical_luma(pixels), mirror=mirror)
