"""Server-rendered SVG bar charts for the hotline's stats page: no JavaScript, no inline
styles (the page's stylesheet colours them through classes, so they pass the reviewer pages'
CSP), and accessible: each chart is ``role="img"`` named by its ``<title>`` and described by
a ``<desc>`` that reads out every bar, and every label is XML-escaped.

Pure functions over numbers and labels; no storage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

WIDTH = 640
LABEL_WIDTH = 190
VALUE_WIDTH = 70
ROW = 26
BAR = 18
PAD = 8
MAX_LABEL = 26
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def _text(value: str) -> str:
    # Escaped for XML text and attributes; control characters (not allowed in XML 1.0) go.
    cleaned = "".join(c for c in value if c in "\t\n" or ord(c) >= 0x20)
    return escape(cleaned, quote=True)


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    bars: Sequence[tuple[str, float]],
    *,
    unit: str = "",
    empty: str = "no data",
) -> str:
    """A horizontal bar chart as an ``<svg>`` element: one row per ``(label, value)``, the
    bars scaled to the largest value, the value written after each bar (``unit`` appended).
    ``chart_id`` names the element (letters, digits, ``-``, ``_``); ``description`` opens the
    ``<desc>``, which then lists every bar; ``empty`` is written when there are no bars."""
    if not _ID.match(chart_id):
        raise TypeError(f"not a chart id: {chart_id!r}")
    suffix = f" {unit}" if unit else ""
    rows = list(bars)
    height = PAD * 2 + ROW * max(1, len(rows))
    top = max((v for _, v in rows), default=0.0)
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH - PAD
    listed = "; ".join(f"{label}: {_number(v)}{suffix}" for label, v in rows) or empty
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{chart_id}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{chart_id}-title">{_text(title)}</title>',
        f'<desc id="{chart_id}-desc">{_text(description)} {_text(listed)}</desc>',
    ]
    if not rows:
        parts.append(
            f'<text class="chart-empty" x="{PAD}" y="{PAD + ROW // 2 + 5}">{_text(empty)}</text>'
        )
    for i, (label, value) in enumerate(rows):
        y = PAD + i * ROW
        width = 0.0 if top <= 0 else max(0.0, value) / top * span
        text_y = y + BAR // 2 + 5
        parts.append(
            f'<g class="chart-row"><title>{_text(label)}: {_number(value)}{_text(suffix)}</title>'
            f'<text class="chart-label" x="{LABEL_WIDTH - PAD}" y="{text_y}" '
            f'text-anchor="end">{_text(_short(label))}</text>'
            f'<rect class="chart-bar" x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" '
            f'height="{BAR}" rx="2"/>'
            f'<text class="chart-value" x="{LABEL_WIDTH + width + 6:.1f}" y="{text_y}">'
            f"{_number(value)}{_text(suffix)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
