"""PDQ hashes of crops of a photo: the variants stored with an entry of media added to a bank.

PDQ shrugs off resizing, recompression and small edits, but a crop moves the picture under
its 64x64 grid: a few percent off one side costs 30-70 bits on some photos, past the 31-bit
threshold. A bank that has the photo itself (not just its hash) can store the hashes of a
few crops of it too; a cropped copy then lands near one of them. Each variant is one more
row in the PDQ index, and every row is one more chance of a false match, so the set is
small and chosen by measurement (docs/detection.md): one side cut by 5% or 10% of
the width or height (a strip cut off), the same share cut from the width and the height with
the shape kept (``frame``: from one side along its axis, evenly across), or the picture cut
evenly on all four sides by 2.5%, 5% or 10% (``centre``): nineteen crops; and, on request,
the true mirror of the picture (``mirror``).

Pure: pixels in, hashes out. The canonical preprocessing is PDQ's own
(:func:`amparo.signals.pdq.canonical_luma`); crops are cut from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from amparo.signals.pdq import canonical_luma, pdq_from_pixels


@dataclass(frozen=True)
class Crop:
    """A crop as the fractions of the width and height removed from each side."""

    name: str
    left: float = 0.0
    top: float = 0.0
    right: float = 0.0
    bottom: float = 0.0

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of the crop of a ``width`` x ``height`` picture."""
        x0, x1 = round(width * self.left), width - round(width * self.right)
        y0, y1 = round(height * self.top), height - round(height * self.bottom)
        return x0, y0, max(x0 + 1, x1), max(y0 + 1, y1)


def side_crop(percent: float, side: str) -> Crop:
    """``percent`` of the width (left, right) or height (top, bottom) cut from one side."""
    fraction = percent / 100
    return Crop(f"crop{percent:g}-{side}", **{side: fraction})


def centre_crop(percent: float) -> Crop:
    """``percent`` of the width and of the height cut, half from each side."""
    half = percent / 200
    return Crop(f"crop{percent:g}-centre", left=half, top=half, right=half, bottom=half)


def framed_crop(percent: float, side: str) -> Crop:
    """``percent`` of the width and of the height cut, the shape kept: all of the cut along
    the axis of ``side`` from that side, the other axis's split evenly (what a crop tool with
    its aspect ratio locked, dragged from one edge, leaves)."""
    fraction, half = percent / 100, percent / 200
    across = {"left": "top", "right": "top", "top": "left", "bottom": "left"}[side]
    other = {"top": "bottom", "left": "right"}[across]
    return Crop(f"frame{percent:g}-{side}", **{side: fraction, across: half, other: half})


SIDES = ("left", "right", "top", "bottom")
CROPS: tuple[Crop, ...] = (
    centre_crop(2.5),
    centre_crop(5),
    *(side_crop(5, side) for side in SIDES),
    *(framed_crop(5, side) for side in SIDES),
    centre_crop(10),
    *(side_crop(10, side) for side in SIDES),
    *(framed_crop(10, side) for side in SIDES),
)
"""The variants stored by default (measured in docs/detection.md)."""


@dataclass(frozen=True)
class PdqVariant:
    """The PDQ hash of one crop of a photo."""

    name: str
    hex: str
    quality: int


def crop_variants(
    pixels: NDArray[np.uint8],
    *,
    min_quality: int = 0,
    crops: tuple[Crop, ...] = CROPS,
    mirror: bool = False,
) -> list[PdqVariant]:
    """The PDQ hashes of ``crops`` of an RGB ``(h, w, 3)`` or luma ``(h, w)`` picture, cut
    from its canonical luma. Crops whose quality is below ``min_quality`` are left out (a
    weak hash matches too much); so are those equal to the picture's own hash or to an
    earlier crop's (nothing to add)."""
    luma = canonical_luma(pixels)
    height, width = luma.shape[:2]
    seen = {pdq_from_pixels(luma).hex}
    out: list[PdqVariant] = []
    if mirror:
        # The picture mirrored, then hashed: PDQ's own mirror (a flip of its DCT, what a
        # query gets for free) lands 30-90 bits off on textures, as PDQ's 64x64 reduction
        # is not symmetric; a bank that has the photo can store the true one.
        flipped = pdq_from_pixels(np.ascontiguousarray(luma[:, ::-1]))
        if flipped.quality >= min_quality and flipped.hex not in seen:
            seen.add(flipped.hex)
            out.append(PdqVariant("mirror", flipped.hex, flipped.quality))
    for crop in crops:
        x0, y0, x1, y1 = crop.box(width, height)
        pdq = pdq_from_pixels(np.ascontiguousarray(luma[y0:y1, x0:x1]))
        if pdq.quality < min_quality or pdq.hex in seen:
            continue
        seen.add(pdq.hex)
        out.append(PdqVariant(crop.name, pdq.hex, pdq.quality))
    return out
