"""Bit-packed arrays of small unsigned integers, read and written inside the kernels.

A packed array is a flat ``uint64`` array; value ``i`` of a region starting at bit ``base``
occupies bits ``base + i * bits`` to ``base + (i + 1) * bits - 1`` (bit ``p`` is bit
``p % 64`` of word ``p // 64``). Every array carries one spare word at its end, so a read
may always load the word after the one a value starts in, without a branch. Regions start
on word boundaries, so kernels filling different regions in parallel never share a word.

The PDQ segments store their row permutations and bucket tables this way, ``bits`` being
the width of the largest value (the row count): 27 bits at 100M entries instead of 32.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from amparo.index._jit import inline

_1 = np.uint64(1)
_63 = np.uint64(63)
_64 = np.uint64(64)


def bits_for(largest: int) -> int:
    """Bits needed to store every value from 0 to ``largest``."""
    return max(1, int(largest).bit_length())


def region_words(count: int, bits: int) -> int:
    """Words a region of ``count`` values of ``bits`` bits takes."""
    return -(-count * bits // 64)


@inline
def unpack(packed: NDArray[np.uint64], pos: int, bits: int) -> np.int64:
    """The ``bits``-bit value starting at bit ``pos``."""
    w = pos >> 6
    s = np.uint64(pos & 63)
    lo = packed[w] >> s
    # Shifting by 64 - s in two steps keeps the shift below 64 when s == 0 (then it adds 0).
    hi = (packed[w + 1] << _1) << (_63 - s)
    return np.int64((lo | hi) & ((_1 << np.uint64(bits)) - _1))


@inline
def store(packed: NDArray[np.uint64], pos: int, bits: int, value: np.int64) -> None:
    """OR ``value`` (below ``2**bits``) into the zeroed slot starting at bit ``pos``."""
    w = pos >> 6
    s = np.uint64(pos & 63)
    v = np.uint64(value)
    packed[w] |= v << s
    if s + np.uint64(bits) > _64:
        packed[w + 1] |= v >> (_64 - s)
