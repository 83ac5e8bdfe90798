"""Borders, pads and caption bars around a photo: found on its luma so that PDQ can also hash
the picture without them (docs/detection.md, "Trimming borders and bars").

Re-uploaders defeat PDQ by framing a picture: a pad of one solid colour (often 5-10% a side,
any colour, then JPEG-compressed, which smears its edge), or a caption bar (a band of one
colour with text on it) at the top or bottom. Either moves a PDQ hash far past the match
threshold; hashing the picture without them brings it back.

The detector works line by line from each edge of the luma. The band's colour is the median
of the outermost lines; each line's *share* is the fraction of its pixels within
``TRIM_COLOUR_TOLERANCE`` of that colour. A *solid* band (pad, border) is a run of lines of
share near 1 from the edge; a band *with text* (caption, watermark strip) ends where
``edge_gap`` consecutive lines are clearly not band (share at most
``TRIM_PICTURE_MAX_SHARE``), which text lines are too thin to make, with a clean line of the
band's colour shortly before. Either way the cut is at the first line that steps visibly
away from the band's last line (``TRIM_EDGE_CONTRAST``): JPEG ringing at the edge stays in
the band, and a sky or a wall fading into the picture, or a round picture's rim widening on
a black surround, never makes such a step. A pad drawn by software around a picture whose
own edge is dark (no step) is cut where its *exact* lines end, and, after JPEG, past the
8x8 block straddling its edge when the picture starts there with a smaller step
(``JPEG_BLOCK``). A band must be at least ``TRIM_MIN_SHARE`` of the side and leave
``TRIM_MIN_KEEP`` of it.

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
TRIM_EXACT_TOLERANCE = 2
"""A synthetic pad's pixels are within this many levels of its colour (PNG: 0; JPEG q30-q90:
flat blocks decode to within 1-2 levels)."""
TRIM_EXACT_LINE_SHARE = 0.995
"""...on at least this share of each line."""
TRIM_EXACT_MIN_SHARE = 0.02
"""An exact pad cut without a step is at least this share of the side (a synthetic gradient's
first lines can be within the tolerance of each other for ~1%)."""
JPEG_BLOCK = 8
"""JPEG codes luma in blocks of this many lines, counted from the image's top and left. At
q50 the block straddling a pad's edge rings, so an exact run stops at that block's first line
(on a block boundary) although up to 7 more lines of it are pad: the cut then goes on to the
step where the picture starts within that block, when there is one (``TRIM_PAD_EDGE_STEP``).
Black 8% pads, q50, the 386 benign photos of benchmarks/detection.py: of the 167 pad sides
cut by their exact run, 139 stopped on a block boundary, 96 of them 1-7 lines short of a step."""
TRIM_RING_MAX_CONTRAST = 5.0
"""A pad line in that straddling block differs from the pad's colour by at most this much per
pixel on average (luma levels; the benchmark's pads: at most 4.8)..."""
TRIM_PAD_EDGE_STEP = 6.0
"""...and the picture's first line differs from it by at least this much more than the line
before does: a step (the benchmark's pad edges: 6.3-14.7). The rim of a picture's own exact
black surround (skimage's retina, which JPEG flattens into exact blocks) brightens by at most
4.9 a line, 5.2 with +30% brightness: no step, so the cut stays where the exact run ends, as
before (none of the benchmark's other edits is cut differently)."""
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
TRIM_TEXT_BAND_MAX_SHARE = 0.3
"""A band found by its text (not solid) is at most this share of the side, and lines are not
measured further for one: captions and watermark strips
are 5-20%; deeper 'bands' are dark or bright picture content with some detail in it."""
TRIM_TEXT_LINE_MAX_SHARE = 0.12
"""Within a band with text, lines that are not clean (share below ``TRIM_EDGE_CLEAN_SHARE``:
a line of text, its ringing) run for at most this share of the side before a clean line (the
space between lines of text, a margin): room for one line of text filling most of a 15% bar.
The tests' captions: 5% (text at half a 10% bar).
Photos whose edge is of one low-contrast tone (skimage's moon) have long runs of lines
between 0.5 and 0.9: they are not bands, and are not measured further than this."""
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
_CHUNK = 32
"""Lines measured at a time while looking for where a band ends."""
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


def _near(lines: NDArray[np.uint8], colour: int) -> NDArray[np.bool_]:
    """Which pixels are within ``TRIM_COLOUR_TOLERANCE`` of ``colour``: one subtraction and
    one unsigned comparison (pixels below the range wrap round to large values)."""
    low = colour - TRIM_COLOUR_TOLERANCE
    offset = np.subtract(lines, low, dtype=np.int16).view(np.uint16)
    return offset <= 2 * TRIM_COLOUR_TOLERANCE


def _clean_start(lines: NDArray[np.uint8]) -> bool:
    """Whether the first of ``lines`` is mostly of the colour of the first lines (the
    median): where any band must start."""
    near = _near(lines[0], int(np.median(lines)))
    return bool(np.count_nonzero(near) >= TRIM_EDGE_CLEAN_SHARE * near.size)


def _pair(lines: NDArray[np.uint8], side: int) -> tuple[int, int]:
    """Bands at the start and at the end of ``lines`` (rows of an image, or its transpose)."""
    limit = int(side * (1 - TRIM_MIN_KEEP))
    start = _band(lines, limit, side, 0)
    end = _band(lines[::-1], limit, side, side % JPEG_BLOCK)
    if start + end > limit:
        return 0, 0
    return start, end


def _band(lines: NDArray[np.uint8], limit: int, side: int, grid: int) -> int:
    """How many lines from the start of ``lines`` form one band ending at a visible edge; 0
    when there is none. ``grid``: JPEG block boundaries lie ``grid`` lines (mod
    ``JPEG_BLOCK``) from the start of ``lines`` (0 from the top or left; ``side % 8`` from the
    bottom or right)."""
    gap = edge_gap(side)
    if lines.shape[0] < 2 or not _clean_start(lines[:2]):
        return 0
    colour = int(np.median(lines[:2]))
    depth = min(lines.shape[0], limit + gap)
    share = _shares(lines, colour, depth, side)
    text = _text_band(lines, share, gap, side)
    if text > side * TRIM_TEXT_BAND_MAX_SHARE:
        text = 0
    # A caption's top margin is a solid band ending at its text: the deeper band wins.
    cut = max(_solid_band(lines, share, gap, colour, grid), text)
    if cut < side * TRIM_MIN_SHARE or cut > limit:
        return 0
    return cut


def _shares(lines: NDArray[np.uint8], colour: int, depth: int, side: int) -> NDArray[np.float64]:
    """Each line's share of ``colour``, for as many of the first ``depth`` lines as deciding
    on a band needs: measured ``_CHUNK`` lines at a time until both kinds of band have ended
    (or cannot be there), so a photo whose edge is only briefly flat costs a few chunks."""
    gap = edge_gap(side)
    text_depth = side * TRIM_TEXT_BAND_MAX_SHARE + 2 * gap
    share = np.zeros(0)
    while share.size < depth:
        chunk = _near(lines[share.size : min(depth, share.size + _CHUNK)], colour)
        share = np.concatenate((share, np.count_nonzero(chunk, axis=1) / chunk.shape[1]))
        not_solid = np.flatnonzero(share < TRIM_SOLID_LINE_SHARE)
        solid_known = bool(not_solid.size) and share.size >= not_solid[0] + gap
        picture = _picture_start(share, gap) is not None
        text_known = (
            picture
            or _longest_unclean(share) > side * TRIM_TEXT_LINE_MAX_SHARE
            or share.size >= text_depth
        )
        if solid_known and text_known:
            break
    return share


def _longest_unclean(share: NDArray[np.float64]) -> int:
    """The longest run of consecutive lines below ``TRIM_EDGE_CLEAN_SHARE``."""
    unclean = np.concatenate(([0], (share < TRIM_EDGE_CLEAN_SHARE).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(unclean))
    return int((edges[1::2] - edges[::2]).max()) if edges.size else 0


def _picture_start(share: NDArray[np.float64], gap: int) -> int | None:
    """The first of ``gap`` consecutive lines that are picture, if any."""
    picture = (share <= TRIM_PICTURE_MAX_SHARE).astype(np.int32)
    if picture.size < gap:
        return None
    runs = np.convolve(picture, np.ones(gap, dtype=np.int32), mode="valid")
    starts = np.flatnonzero(runs == gap)
    return int(starts[0]) if starts.size else None


def _solid_band(
    values: NDArray[np.uint8], share: NDArray[np.float64], gap: int, colour: int, grid: int
) -> int:
    """A pad or border: lines all of one colour from the edge, then, within ``gap`` lines
    (JPEG ringing), a line that differs visibly from the last of them. The cut is at that
    line; 0 when there is no such band. Where no line steps (a black pad around a picture
    whose own edge is dark), an *exact* pad is still cut where it ends (``_exact_run``), or
    past the JPEG block that straddles its edge (``_past_ringing``)."""
    solid = share >= TRIM_SOLID_LINE_SHARE
    end = int(np.argmin(solid)) if not solid.all() else share.size
    if end == 0:
        return 0
    if end < share.size:
        cut = _edge_after(values, end - 1, end, gap)
        if cut:
            return cut
    # No step, or the picture's own edge is of the pad's colour for as far as was measured.
    exact = _exact_run(values[: end + 1], colour)  # one line past: where an exact run ends
    if exact < TRIM_EXACT_MIN_SHARE * values.shape[0]:
        return 0
    return _past_ringing(values, exact, end, colour, grid)


def _exact_run(lines: NDArray[np.uint8], colour: int) -> int:
    """How many lines from the edge are a synthetic pad: nearly every pixel within
    ``TRIM_EXACT_TOLERANCE`` of the band's colour. Cameras and scanners leave noise in even the
    darkest sky (the skimage photos' dark edges: several levels), a pad drawn by software is
    flat, and JPEG keeps a flat 8x8 block flat to a level or two: so the run ends where the
    picture starts, or in the block that straddles it (a few pad lines stay in the crop)."""
    offset = np.abs(lines.astype(np.int16) - colour) <= TRIM_EXACT_TOLERANCE
    exact = np.count_nonzero(offset, axis=1) >= TRIM_EXACT_LINE_SHARE * lines.shape[1]
    return int(np.argmin(exact)) if not exact.all() else 0


def _past_ringing(values: NDArray[np.uint8], exact: int, end: int, colour: int, grid: int) -> int:
    """Where an exact pad ends when its run stopped on a JPEG block boundary (``grid``: the
    boundaries' offset from the first line): at the first line of that block, or the one just
    past it, that steps ``TRIM_PAD_EDGE_STEP`` further from the pad's colour than the line
    before it, which is within ``TRIM_RING_MAX_CONTRAST`` of it; no further than ``end``, so
    every line cut is solid. ``exact`` itself otherwise (off the grid, as a PNG pad's run ends
    at the pad's edge; or no step: a dark rim, a fade)."""
    if (exact - grid) % JPEG_BLOCK:
        return exact
    lines = values[exact - 1 : min(end, exact + JPEG_BLOCK) + 1].astype(np.int16)
    contrast = np.abs(lines - colour).mean(axis=1)
    ringing = contrast[:-1] <= TRIM_RING_MAX_CONTRAST
    steps = np.flatnonzero(ringing & (np.diff(contrast) >= TRIM_PAD_EDGE_STEP))
    return exact + int(steps[0]) if steps.size else exact


def _text_band(values: NDArray[np.uint8], share: NDArray[np.float64], gap: int, side: int) -> int:
    """A band mostly of one colour with text on it: it ends where ``gap`` consecutive lines
    are picture, with a clean line of the band's colour shortly before. The cut is at the
    first line after that clean line that differs visibly from it; 0 when there is none."""
    first = _picture_start(share, gap)
    if first is None:
        return 0
    clean = np.flatnonzero(share[max(0, first - gap) : first] >= TRIM_EDGE_CLEAN_SHARE)
    if not clean.size:
        return 0  # no clean line just before the picture: a fade, not a band
    last_clean = max(0, first - gap) + int(clean[-1])
    if float(share[:first].mean()) < TRIM_BAND_MIN_MEAN:
        return 0
    if _longest_unclean(share[:last_clean]) > side * TRIM_TEXT_LINE_MAX_SHARE:
        return 0  # not text lines between clean ones: picture content of about one colour
    return _edge_after(values, last_clean, last_clean + 1, first + gap - last_clean - 1)


def _edge_after(values: NDArray[np.uint8], reference: int, start: int, window: int) -> int:
    """The first line in ``[start, start + window)`` that differs visibly from line
    ``reference``: by ``TRIM_EDGE_CONTRAST`` per pixel on average, and by that much more than
    the line two before it does (a step, not a gradient, nor the rim of a round picture
    widening line by line). 0 when there is none."""
    stop = min(values.shape[0], start + window)
    if stop <= start:
        return 0
    window_lines = values[start:stop].astype(np.int16)
    contrast = np.abs(window_lines - values[reference].astype(np.int16)).mean(axis=1)
    before = np.concatenate(([0.0, 0.0], contrast[:-2]))
    above = np.flatnonzero(contrast - before >= TRIM_EDGE_CONTRAST)
    return start + int(above[0]) if above.size else 0
