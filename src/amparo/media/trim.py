"""Borders, pads and caption bars around a photo: found on its luma so that PDQ can also hash
the picture without them (docs/detection.md, "Trimming borders and bars").

Re-uploaders defeat PDQ by framing a picture: a pad of one solid colour (often 5-10% a side,
any colour, then JPEG-compressed, which smears its edge), or a caption bar (a band of one
colour with text on it) at the top or bottom. Either moves a PDQ hash far past the match
threshold; hashing the picture without them brings it back.

The detector works line by line from each edge of the luma. The band's colour is the median
of the outermost lines; each line's *share* is the fraction of its pixels within
``TRIM_COLOUR_TOLERANCE`` of that colour. A pad has shares near 1; a caption bar's margins
too, and its text lines lower. The picture starts at the first ``edge_gap`` consecutive lines
that are all clearly not band (share at most ``TRIM_PICTURE_MAX_SHARE``): text lines are too
thin to make such a run, and JPEG ringing at the band's edge stays inside the band. A band is
kept only when it is mostly of its colour, ends at a visible edge (a clean band line within
``edge_gap`` lines before the picture starts: a sky or a wall fading into the picture never
has one), is at least ``TRIM_MIN_SHARE`` of the side and leaves ``TRIM_MIN_KEEP`` of it.

Pure NumPy on luma; nothing here decodes. Video uses :mod:`amparo.media.borders` instead
(stricter flatness, tuned on video frames), unchanged by this module.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from amparo.media.borders import NO_BORDERS, Borders

TRIM_COLOUR_TOLERANCE = 24
"""A pixel is of the band's colour within this many luma levels. The 8% pads of the tests
(tests/unit/test_trim.py: skimage photos, black, white and red, JPEG quality 90 and 30) keep
their pixels within 0-13 levels of the pad's colour, and white pads at quality 30 within 33
in the 8x8 blocks that straddle the edge; caption bars keep their background within it
around the text's ringing."""
TRIM_EDGE_CLEAN_SHARE = 0.9
"""The outermost line, and one line shortly before the picture starts, have at least this
share of the band's colour: a band starts at the edge and ends with a clean line (a pad, or
the margin under a caption's text). Pads and caption margins measure 1.0."""
TRIM_SOLID_LINE_SHARE = 0.98
"""A line of a pad or border has at least this share of the pad's colour (the tests' pads:
1.0 but for the blocks straddling the edge, which the picture's start is searched past)."""
TRIM_EDGE_CONTRAST = 16.0
"""Where a band ends, a line within ``edge_gap`` lines of its last one differs from it by at
least this much per pixel on average (luma levels), and by this much more than the line two
before it: a visible edge. A round picture's rim on a black surround (skimage's retina)
widens by 2-4 a line. The tests' pads against
the skimage photos measure 25-217; a steep sky gradient (0.7 levels a line, the tests' synthetic
sky) 6 over the 8 lines of the smallest ``edge_gap``."""
TRIM_PICTURE_MAX_SHARE = 0.5
"""Lines with at most this share of the band's colour are picture: the skimage photos' first
lines measure 0.14-0.33 against the tests' pads and 0-0.05 against the caption bars; caption
text lines (PIL's font at half the bar's height) 0.64-0.77."""
TRIM_BAND_MIN_MEAN = 0.8
"""A band's lines have on average at least this share of its colour: mostly one colour. The
tests' caption bars (one line of text) measure 0.91-0.95, pads 0.98-1.0."""
TRIM_SOLID_MEAN = 0.95
"""Bands whose mean share is at least this are solid (pads, borders) and may be as deep as
``TRIM_MIN_KEEP`` allows; others (text on a band) at most ``TRIM_TEXT_BAND_MAX_SHARE``."""
TRIM_TEXT_BAND_MAX_SHARE = 0.3
"""A band with text on it is at most this share of the side: captions and watermark strips
are 5-20%; deeper 'bands' are dark or bright picture content with some detail in it."""
TRIM_EDGE_GAP_SHARE = 0.015
"""The picture starts at the first ``edge_gap`` consecutive lines that are picture, where
``edge_gap`` is this share of the side, at least ``TRIM_MIN_EDGE_GAP`` lines: longer than
JPEG ringing past a pad's edge (within the 8x8 block it falls in) and than the horizontal
strokes of caption text (1-3 lines at half a 10% bar's height)."""
TRIM_MIN_EDGE_GAP = 8
"""Lower bound of ``edge_gap`` in lines: one JPEG block."""
TRIM_MIN_SHARE = 0.01
"""Bands thinner than this share of the side are ignored. Thin pads already matter: a black
or white pad of 1% on every side moves the skimage photos' PDQ by 20-46 bits (0.5%: 8-20,
2% on one side only: 8-48), and trimming brings them back to 0-8 (but for black pads on the
two photos with black surrounds). Below 1% a band is 5 lines of a 512-pixel side, too thin
to tell from an edge of the picture."""
TRIM_MIN_KEEP = 0.5
"""Trimming keeps at least this share of each side: an image that is itself mostly one flat
colour is not trimmed to the little detail it has (a side whose bands would take more is
not trimmed at all). A 16:9 picture padded to a square keeps 56% of its height, so such pads
are still trimmed."""
TRIM_MIN_SIDE = 32
"""Images with a side shorter than this are not trimmed (too small to hold a band)."""


def edge_gap(side: int) -> int:
    """Consecutive picture lines that mark where the picture starts, for a side this long."""
    return max(TRIM_MIN_EDGE_GAP, round(side * TRIM_EDGE_GAP_SHARE))


def find_trim(luma: NDArray[np.uint8]) -> Borders:
    """Uniform borders, pads and caption bars at the edges of an ``(h, w)`` luma image, in
    pixels of that image; ``NO_BORDERS`` when there are none. Top and bottom first, then the
    left and right between them (a picture framed on all four sides is trimmed on all four)."""
    height, width = luma.shape[:2]
    if min(height, width) < TRIM_MIN_SIDE:
        return NO_BORDERS
    # Any band starts at an outermost line mostly of one colour: when none of the four is
    # (most photos), there is nothing to find.
    edges = (luma[:2], luma[-2:], luma[:, :2].T, luma[:, -2:].T)
    if not any(_clean_start(e) for e in edges):
        return NO_BORDERS
    top, bottom = _pair(luma, height)
    inner = luma[top : height - bottom]
    left, right = _pair(inner.T, width)
    return Borders(top, bottom, left, right)


def trim_shares(borders: Borders, height: int, width: int) -> tuple[float, float, float, float]:
    """What ``borders`` trims from an ``(height, width)`` image, as shares of the height (top,
    bottom) and of the width (left, right), rounded to 4 places."""
    return (
        round(borders.top / height, 4),
        round(borders.bottom / height, 4),
        round(borders.left / width, 4),
        round(borders.right / width, 4),
    )


def _clean_start(lines: NDArray[np.uint8]) -> bool:
    colour = int(np.median(lines))
    near = np.abs(lines[0].astype(np.int16) - colour) <= TRIM_COLOUR_TOLERANCE
    return bool(near.mean() >= TRIM_EDGE_CLEAN_SHARE)


def _pair(lines: NDArray[np.uint8], side: int) -> tuple[int, int]:
    """Bands at the start and at the end of ``lines`` (rows of an image, or its transpose)."""
    limit = int(side * (1 - TRIM_MIN_KEEP))
    start = _band(lines, limit, side)
    end = _band(lines[::-1], limit, side)
    if start + end > limit:
        return 0, 0
    return start, end


def _band(lines: NDArray[np.uint8], limit: int, side: int) -> int:
    """How many lines from the start of ``lines`` form one band ending at a visible edge; 0
    when there is none."""
    gap = edge_gap(side)
    if lines.shape[0] < 2 or not _clean_start(lines[:2]):
        return 0
    colour = int(np.median(lines[:2]))
    depth = min(lines.shape[0], limit + gap)
    values = lines[:depth].astype(np.int16)
    share = (np.abs(values - colour) <= TRIM_COLOUR_TOLERANCE).mean(axis=1)
    # A caption's top margin is a solid band ending at its text: the deeper band wins.
    cut = max(_solid_band(values, share, gap), _text_band(values, share, gap))
    if cut < side * TRIM_MIN_SHARE or cut > limit:
        return 0
    if float(share[:cut].mean()) < TRIM_SOLID_MEAN and cut > side * TRIM_TEXT_BAND_MAX_SHARE:
        return 0
    return cut


def _solid_band(values: NDArray[np.int16], share: NDArray[np.float64], gap: int) -> int:
    """A pad or border: lines all of one colour from the edge, then, within ``gap`` lines
    (JPEG ringing), a line that differs visibly from the last of them. The cut is at that
    line; 0 when there is no such band."""
    solid = share >= TRIM_SOLID_LINE_SHARE
    end = int(np.argmin(solid)) if not solid.all() else share.size
    if end == 0 or end >= share.size:
        return 0
    return _edge_after(values, end - 1, end, gap)


def _text_band(values: NDArray[np.int16], share: NDArray[np.float64], gap: int) -> int:
    """A band mostly of one colour with text on it: it ends where ``gap`` consecutive lines
    are picture, with a clean line of the band's colour shortly before. The cut is at the
    first line after that clean line that differs visibly from it; 0 when there is none."""
    picture = (share <= TRIM_PICTURE_MAX_SHARE).astype(np.int32)
    if picture.size < gap:
        return 0
    runs = np.convolve(picture, np.ones(gap, dtype=np.int32), mode="valid")
    starts = np.flatnonzero(runs == gap)
    if not starts.size:
        return 0
    first = int(starts[0])
    clean = np.flatnonzero(share[max(0, first - gap) : first] >= TRIM_EDGE_CLEAN_SHARE)
    if not clean.size:
        return 0  # no clean line just before the picture: a fade, not a band
    last_clean = max(0, first - gap) + int(clean[-1])
    if float(share[:first].mean()) < TRIM_BAND_MIN_MEAN:
        return 0
    return _edge_after(values, last_clean, last_clean + 1, first + gap - last_clean - 1)


def _edge_after(values: NDArray[np.int16], reference: int, start: int, window: int) -> int:
    """The first line in ``[start, start + window)`` that differs visibly from line
    ``reference``: by ``TRIM_EDGE_CONTRAST`` per pixel on average, and by that much more than
    the line two before it does (a step, not a gradient, nor the rim of a round picture
    widening line by line). 0 when there is none."""
    stop = min(values.shape[0], start + window)
    if stop <= start:
        return 0
    contrast = np.abs(values[start:stop] - values[reference]).mean(axis=1)
    before = np.concatenate(([0.0, 0.0], contrast[:-2]))
    above = np.flatnonzero(contrast - before >= TRIM_EDGE_CONTRAST)
    return start + int(above[0]) if above.size else 0
