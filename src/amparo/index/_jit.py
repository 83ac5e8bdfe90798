"""Typed wrappers around numba's JIT, and the popcount every kernel shares.

numba ships no type information; these wrappers keep the kernels' own annotations visible to
mypy. Kernels are compiled on first use and cached on disk next to the source
(``cache=True``), so only the first process on a machine pays the compile time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def jit(fn: F) -> F:
    """Compile ``fn`` in nopython mode, releasing the GIL (serial kernel)."""
    return cast(F, numba.njit(cache=True, nogil=True)(fn))


def pjit(fn: F) -> F:
    """Compile ``fn`` with ``numba.prange`` loops spread over all cores."""
    return cast(F, numba.njit(cache=True, nogil=True, parallel=True)(fn))


def inline(fn: F) -> F:
    """A small helper inlined into the kernels that call it."""
    return cast(F, numba.njit(cache=True, inline="always")(fn))


prange = cast(Callable[..., range], numba.prange)

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_1 = np.uint64(1)
_2 = np.uint64(2)
_4 = np.uint64(4)
_56 = np.uint64(56)


@inline
def popcount64(x: np.uint64) -> np.uint64:
    # LLVM recognises this SWAR idiom and emits a single POPCNT instruction.
    x = x - ((x >> _1) & _M1)
    x = (x & _M2) + ((x >> _2) & _M2)
    x = (x + (x >> _4)) & _M4
    return np.uint64((x * _H01) >> _56)
