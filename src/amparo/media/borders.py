"""Letterbox and pillarbox bars: found on a video frame's luma so that vPDQ can also hash
the picture without them (docs/video.md, "Letterbox / pillarbox bars").

Pure NumPy on the luma :mod:`amparo.media.video` decodes; nothing here decodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Borders:
    """Uniform bars at the edges of a frame, in pixels of the frame they were found in."""

    top: int
    bottom: int
    left: int
    right: int

    def __bool__(self) -> bool:
        return bool(self.top or self.bottom or self.left or self.right)

    def crop(self, luma: NDArray[np.uint8]) -> NDArray[np.uint8]:
        height, width = luma.shape[:2]
        return luma[self.top : height - self.bottom, self.left : width - self.right]


NO_BORDERS = Borders(0, 0, 0, 0)
BORDER_MAX_STD = 3.0
"""A bar's rows (or columns) vary by at most this much (luma standard deviation). Bars in the
H.264 reference videos measure 0-2.3; flat picture content (a wall) measures 3 and up."""
BORDER_MAX_MEAN_DELTA = 10.0
"""...and their mean stays within this of the outermost line's, so a bar is one colour."""
BORDER_MIN_EDGE_STD = 8.0
"""Where the bar ends the picture must start visibly: one of the two lines after the bar
varies by at least this much, or differs in mean by twice ``BORDER_MAX_MEAN_DELTA``. A
gradual fade from flat to textured (a wall, a sky) is not a bar."""
BORDER_MIN_SHARE = 0.02
"""Bars thinner than this share of the side are ignored: too thin to move a PDQ hash."""
BORDER_MIN_CONTENT_SHARE = 0.25
"""The picture left between bars must keep this share of each side; a frame that is
almost all flat (a fade, a title card) is not cropped."""


def _edge_run(means: NDArray[np.float32], stds: NDArray[np.float32], limit: int) -> int:
    """How many lines from the start of ``means``/``stds`` form one flat bar, ending at a
    visible edge; 0 when there is none."""
    flat = (stds[:limit] <= BORDER_MAX_STD) & (
        np.abs(means[:limit] - means[0]) <= BORDER_MAX_MEAN_DELTA
    )
    if not flat.size or not flat[0] or flat.all():
        return 0
    run = int(np.argmin(flat))
    after = slice(run, min(run + 2, means.size))
    edge = bool(
        (stds[after] >= BORDER_MIN_EDGE_STD).any()
        or (np.abs(means[after] - means[0]) >= 2 * BORDER_MAX_MEAN_DELTA).any()
    )
    return run if edge else 0


def detect_borders(luma: NDArray[np.uint8]) -> Borders:
    """Find letterbox (top/bottom) and pillarbox (left/right) bars in an ``(h, w)`` frame.

    A bar is a run of edge rows (columns) each nearly constant and all of about the same
    brightness as the outermost one. Compression noise leaves bars flat to within a few
    levels, so a small standard-deviation bound separates them from picture content; the
    blended line where bar meets picture stops the run and stays in the crop.
    """
    height, width = luma.shape[:2]
    if height < 16 or width < 16:
        return NO_BORDERS
    # Any bar starts at an outermost line that is flat: when none of the four is (most
    # frames), there is nothing to find and the full statistics below are not needed. The
    # margin keeps this a pure shortcut where rounding could differ from them.
    edges = (luma[0], luma[-1], luma[:, 0], luma[:, -1])
    if all(float(np.std(e, dtype=np.float64)) > BORDER_MAX_STD + 0.5 for e in edges):
        return NO_BORDERS
    return _measure_borders(luma)


def _measure_borders(luma: NDArray[np.uint8]) -> Borders:
    """:func:`detect_borders` from the full row and column statistics (no shortcut)."""
    height, width = luma.shape[:2]
    pixels = luma.astype(np.float32)
    row_mean, row_std = pixels.mean(axis=1), pixels.std(axis=1)
    max_rows = int(height * (1 - BORDER_MIN_CONTENT_SHARE))
    top = _edge_run(row_mean, row_std, max_rows)
    bottom = _edge_run(row_mean[::-1], row_std[::-1], max_rows)
    if top + bottom > max_rows:
        top = bottom = 0
    # Columns are measured between the top and bottom bars, so a letterboxed and
    # pillarboxed ("windowboxed") frame is cropped on all four sides.
    inner = pixels[top : height - bottom]
    col_mean, col_std = inner.mean(axis=0), inner.std(axis=0)
    max_cols = int(width * (1 - BORDER_MIN_CONTENT_SHARE))
    left = _edge_run(col_mean, col_std, max_cols)
    right = _edge_run(col_mean[::-1], col_std[::-1], max_cols)
    if left + right > max_cols:
        left = right = 0
    top, bottom = (v if v >= height * BORDER_MIN_SHARE else 0 for v in (top, bottom))
    left, right = (v if v >= width * BORDER_MIN_SHARE else 0 for v in (left, right))
    return Borders(top, bottom, left, right)
