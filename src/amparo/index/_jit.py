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
from numba.extending import intrinsic

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


def _prefetch_typer(typingctx: Any, arr: Any, row: Any) -> Any:
    """Typing and code generation of :data:`prefetch` (read, high locality, data cache)."""
    from llvmlite import ir  # type: ignore[import-untyped]
    from numba.core import cgutils, types

    if not isinstance(arr, types.Array) or not 1 <= arr.ndim <= 2:
        return None
    sig = types.void(arr, row)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = context.cast(builder, args[1], idxty, types.intp)
        zero = context.get_constant(types.intp, 0)
        indices = [idx, zero] if aryty.ndim == 2 else [idx]
        ptr = cast(Any, cgutils).get_item_pointer(context, builder, aryty, ary, indices)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cast(Any, cgutils).get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


# ``prefetch(a, i)``: ask the CPU to start loading element (1-D) or row (2-D) ``i`` of ``a``
# (LLVM's prefetch intrinsic: a hint with no effect on results, which never faults, so it
# needs no bounds check). A loop over random reads that asks for the data some iterations
# ahead keeps many more cache misses in flight than the CPU's out-of-order window alone.
prefetch = cast(Callable[[Any, Any], None], intrinsic(_prefetch_typer))
