"""The figures a hotline publishes: how many URLs were reported, how many are still online,
how many notices went out, and how fast hosts removed what they were told about, overall,
per provider and per hosting country.

:func:`compute_figures` is pure (a list of :class:`~amparo.hotline.model.UrlReport` and the
notices sent per report in, :class:`HotlineFigures` out), so it is tested without a database;
:class:`Figures` reads every report through the repository and calls it. Removal times run
from the first notice to the confirmed removal (``UrlReport.time_to_removal_seconds``); the
percentiles are nearest-rank (the value of a real report, never an interpolation), and the
shares removed within 1, 3 and 7 days are of the reports that were noticed.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from amparo.hotline.context import HotlineContext
from amparo.hotline.model import OPEN_REPORT_STATUSES, REPORT_STATUSES, UrlReport

UNKNOWN = "unknown"
"""The provider or country of a report not (yet) attributed."""
QUANTILES = (50, 90, 99)
WITHIN_DAYS = (1, 3, 7)
REMOVAL_BUCKETS: tuple[tuple[str, str, float], ...] = (
    ("under_1h", "under 1 hour", 3600.0),
    ("1h_6h", "1 to 6 hours", 6 * 3600.0),
    ("6h_24h", "6 to 24 hours", 24 * 3600.0),
    ("1d_3d", "1 to 3 days", 3 * 86400.0),
    ("3d_7d", "3 to 7 days", 7 * 86400.0),
    ("over_7d", "over 7 days", math.inf),
)
"""The removal-time distribution's buckets: key, English label, upper bound (seconds)."""
CSV_COLUMNS = (
    "scope",
    "name",
    "reports",
    "open_urls",
    "notices_sent",
    "noticed",
    "removed",
    "removal_hours_p50",
    "removal_hours_p90",
    "removal_hours_p99",
    "removed_within_1d",
    "removed_within_3d",
    "removed_within_7d",
    "reappearances",
)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class GroupFigures:
    """The figures of one group of reports: all of them, one provider's or one country's."""

    name: str
    reports: int = 0
    open_urls: int = 0
    """Reports still open (``OPEN_REPORT_STATUSES``): not removed, not closed."""
    notices_sent: int = 0
    """Notices (repeats, escalations and forwards too) that went out."""
    noticed: int = 0
    """Reports that had at least one notice (the base of the shares)."""
    removed: int = 0
    """Reports whose content was confirmed removed (noticed or not)."""
    removal_hours: dict[str, float | None] = field(default_factory=dict)
    """``p50``, ``p90``, ``p99`` of hours from the first notice to removal (None: none yet)."""
    removed_within: dict[str, float | None] = field(default_factory=dict)
    """``1d``, ``3d``, ``7d``: share (0-1) of noticed reports removed within that time."""
    reappearances: int = 0
    """Times removed content came back."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reports": self.reports,
            "open_urls": self.open_urls,
            "notices_sent": self.notices_sent,
            "noticed": self.noticed,
            "removed": self.removed,
            "removal_hours": dict(self.removal_hours),
            "removed_within": dict(self.removed_within),
            "reappearances": self.reappearances,
        }


@dataclass(frozen=True)
class HotlineFigures:
    """Everything the stats page, ``amparo hotline stats``, the API and /metrics show."""

    generated_at: datetime
    overall: GroupFigures
    by_status: dict[str, int]
    by_provider: tuple[GroupFigures, ...]
    """Most reports first; reports without attribution under ``unknown``."""
    by_country: tuple[GroupFigures, ...]
    removal_buckets: tuple[tuple[str, str, int], ...]
    """(key, English label, reports) per bucket of :data:`REMOVAL_BUCKETS`."""

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "overall": self.overall.to_json(),
            "by_status": dict(self.by_status),
            "by_provider": [g.to_json() for g in self.by_provider],
            "by_country": [g.to_json() for g in self.by_country],
            "removal_buckets": [
                {"key": key, "label": label, "reports": count}
                for key, label, count in self.removal_buckets
            ],
        }

    def to_csv(self) -> str:
        """One row per group (``overall``, then each provider, then each country)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        rows = [("overall", self.overall)]
        rows += [("provider", g) for g in self.by_provider]
        rows += [("country", g) for g in self.by_country]
        for scope, g in rows:
            writer.writerow(
                [
                    scope,
                    _cell(g.name),
                    g.reports,
                    g.open_urls,
                    g.notices_sent,
                    g.noticed,
                    g.removed,
                    *(_number(g.removal_hours.get(f"p{q}"), 2) for q in QUANTILES),
                    *(_number(g.removed_within.get(f"{d}d"), 4) for d in WITHIN_DAYS),
                    g.reappearances,
                ]
            )
        return out.getvalue()


def _cell(text: str) -> str:
    # Provider names come from third-party databases: never let a spreadsheet run one.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _number(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:.{places}f}"


def _group(name: str, reports: Sequence[UrlReport], counts: Mapping[int, int]) -> GroupFigures:
    noticed = [r for r in reports if r.first_notice_at is not None]
    times = [t for r in noticed if (t := r.time_to_removal_seconds) is not None]
    hours = [t / 3600.0 for t in times]
    return GroupFigures(
        name=name,
        reports=len(reports),
        open_urls=sum(1 for r in reports if r.status in OPEN_REPORT_STATUSES),
        notices_sent=sum(counts.get(r.id, 0) for r in reports),
        noticed=len(noticed),
        removed=sum(1 for r in reports if r.removed_at is not None),
        removal_hours={f"p{q}": percentile(hours, q) for q in QUANTILES},
        removed_within={
            f"{d}d": (sum(1 for t in times if t <= d * 86400) / len(noticed) if noticed else None)
            for d in WITHIN_DAYS
        },
        reappearances=sum(r.reappearances for r in reports),
    )


def _groups(
    reports: Sequence[UrlReport], counts: Mapping[int, int], key: str
) -> tuple[GroupFigures, ...]:
    grouped: dict[str, list[UrlReport]] = {}
    for report in reports:
        value = report.provider if key == "provider" else report.country
        grouped.setdefault(value or UNKNOWN, []).append(report)
    figures = [_group(name, members, counts) for name, members in grouped.items()]
    return tuple(sorted(figures, key=lambda g: (-g.reports, g.name == UNKNOWN, g.name)))


def compute_figures(
    reports: Iterable[UrlReport], notice_counts: Mapping[int, int], now: datetime
) -> HotlineFigures:
    """The figures of ``reports``; ``notice_counts``: notices sent per report id."""
    every = list(reports)
    by_status = dict.fromkeys(REPORT_STATUSES, 0)
    for report in every:
        by_status[report.status] = by_status.get(report.status, 0) + 1
    buckets = dict.fromkeys((key for key, _, _ in REMOVAL_BUCKETS), 0)
    for report in every:
        seconds = report.time_to_removal_seconds
        if seconds is None:
            continue
        for key, _label, upper in REMOVAL_BUCKETS:
            if seconds < upper:
                buckets[key] += 1
                break
    return HotlineFigures(
        generated_at=now,
        overall=_group("overall", every, notice_counts),
        by_status=by_status,
        by_provider=_groups(every, notice_counts, "provider"),
        by_country=_groups(every, notice_counts, "country"),
        removal_buckets=tuple((key, label, buckets[key]) for key, label, _ in REMOVAL_BUCKETS),
    )


class Figures:
    """The published figures, computed from every report at the time of asking."""

    def __init__(self, ctx: HotlineContext) -> None:
        self.ctx = ctx

    def figures(self, now: datetime | None = None) -> HotlineFigures:
        records = self.ctx.records
        counts = records.notice_counts()
        return compute_figures(records.each(), counts, now or self.ctx.clock())

    def compute(self, now: datetime | None = None) -> dict[str, Any]:
        """The figures a hotline publishes: overall, per provider and per country (the JSON
        of :class:`HotlineFigures`)."""
        return self.figures(now).to_json()
