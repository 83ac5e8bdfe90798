"""The hotline's published figures (removal-time percentiles, shares removed within 1, 3 and
7 days of the first notice, per provider and per country) and the SVG charts of the stats
page (well-formed XML, labels escaped, accessible)."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from amparo.hotline.charts import bar_chart
from amparo.hotline.figures import compute_figures, percentile
from amparo.hotline.model import Attribution, UrlReport

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=30)
SVG = "{http://www.w3.org/2000/svg}"


def report(
    id: int,
    status: str = "notified",
    *,
    provider: str | None = "Hoster A",
    country: str | None = "MX",
    removed_after_hours: float | None = None,
    noticed: bool = True,
    reappearances: int = 0,
) -> UrlReport:
    attribution = (
        Attribution(host=f"h{id}.example", provider=provider, country=country)
        if provider or country
        else None
    )
    first = T0 if noticed else None
    removed = T0 + timedelta(hours=removed_after_hours) if removed_after_hours is not None else None
    return UrlReport(
        id=id,
        url=f"https://h{id}.example/p",
        host=f"h{id}.example",
        status="removed" if removed is not None else status,
        created_at=T0 - timedelta(hours=1),
        updated_at=T0,
        attribution=attribution,
        first_notice_at=first,
        removed_at=removed,
        reappearances=reappearances,
    )


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 90) == 90.0
    assert percentile(values, 99) == 99.0
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_overall_figures() -> None:
    reports = [
        report(1, removed_after_hours=2),  # within 1 day
        report(2, removed_after_hours=30),  # within 3 days
        report(3, removed_after_hours=24 * 5, reappearances=2),  # within 7 days
        report(4, removed_after_hours=24 * 10),  # later
        report(5),  # noticed, still online
        report(6, "new", noticed=False, provider=None, country=None),
        report(7, "closed", noticed=False),
    ]
    counts = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5}
    figures = compute_figures(reports, counts, NOW)
    o = figures.overall
    assert (o.reports, o.noticed, o.removed, o.notices_sent) == (7, 5, 4, 15)
    assert o.open_urls == 2  # report 5 (notified) and 6 (new)
    assert o.reappearances == 2
    assert o.removed_within == {"1d": 1 / 5, "3d": 2 / 5, "7d": 3 / 5}
    assert o.removal_hours == {"p50": 30.0, "p90": 240.0, "p99": 240.0}
    assert figures.by_status["removed"] == 4 and figures.by_status["closed"] == 1
    buckets = {key: n for key, _label, n in figures.removal_buckets}
    assert buckets == {
        "under_1h": 0,
        "1h_6h": 1,
        "6h_24h": 0,
        "1d_3d": 1,
        "3d_7d": 1,
        "over_7d": 1,
    }
    assert figures.generated_at == NOW


def test_boundaries_are_inclusive() -> None:
    figures = compute_figures([report(1, removed_after_hours=24)], {}, NOW)
    assert figures.overall.removed_within["1d"] == 1.0


def test_per_provider_and_country() -> None:
    reports = [
        report(1, provider="Hoster A", country="MX", removed_after_hours=1),
        report(2, provider="Hoster A", country="BR", removed_after_hours=3),
        report(3, provider="Hoster A", country="MX"),
        report(4, provider="Hoster B", country="MX", removed_after_hours=100),
        report(5, "new", noticed=False, provider=None, country=None),
    ]
    figures = compute_figures(reports, {1: 1, 2: 1, 3: 3, 4: 2}, NOW)
    providers = {g.name: g for g in figures.by_provider}
    assert [g.name for g in figures.by_provider] == ["Hoster A", "Hoster B", "unknown"]
    a = providers["Hoster A"]
    assert (a.reports, a.noticed, a.removed, a.notices_sent, a.open_urls) == (3, 3, 2, 5, 1)
    assert a.removal_hours["p50"] == 1.0 and a.removal_hours["p99"] == 3.0
    assert a.removed_within["1d"] == pytest.approx(2 / 3)
    assert providers["Hoster B"].removed_within == {"1d": 0.0, "3d": 0.0, "7d": 1.0}
    unknown = providers["unknown"]
    assert unknown.reports == 1 and unknown.noticed == 0
    assert unknown.removed_within == {"1d": None, "3d": None, "7d": None}
    assert unknown.removal_hours["p50"] is None
    countries = {g.name: g for g in figures.by_country}
    assert [g.name for g in figures.by_country] == ["MX", "BR", "unknown"]
    assert countries["MX"].reports == 3 and countries["BR"].removed == 1


def test_json_and_csv() -> None:
    reports = [
        report(1, provider='=HYPERLINK("x")', removed_after_hours=5),
        report(2, provider="Hoster, Inc.", country="AR"),
    ]
    figures = compute_figures(reports, {1: 1, 2: 1}, NOW)
    data = figures.to_json()
    assert data["overall"]["reports"] == 2
    assert data["removal_buckets"][1] == {"key": "1h_6h", "label": "1 to 6 hours", "reports": 1}
    assert data["generated_at"] == NOW.isoformat()
    rows = list(csv.DictReader(io.StringIO(figures.to_csv())))
    assert [r["scope"] for r in rows] == ["overall", "provider", "provider", "country", "country"]
    names = [r["name"] for r in rows]
    assert "Hoster, Inc." in names
    assert '\'=HYPERLINK("x")' in names  # a formula is never a live cell
    assert rows[0]["removal_hours_p50"] == "5.00" and rows[0]["removed_within_1d"] == "0.5000"


def test_no_reports() -> None:
    figures = compute_figures([], {}, NOW)
    assert figures.overall.reports == 0 and figures.by_provider == ()
    assert figures.overall.removal_hours == {"p50": None, "p90": None, "p99": None}
    assert len(figures.to_csv().splitlines()) == 2


def test_chart_is_accessible_well_formed_svg() -> None:
    bars = [("<script>alert(1)</script>", 3.0), ('Hoster & Sons "Ltd"', 1.5), ("zero", 0.0)]
    svg = bar_chart("by-provider", "Reports <per> provider", "Reports per provider.", bars)
    root = ET.fromstring(svg)  # well-formed, or this raises
    assert root.tag == SVG + "svg"
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "by-provider-title by-provider-desc"
    title = root.find(SVG + "title")
    desc = root.find(SVG + "desc")
    assert title is not None and title.text == "Reports <per> provider"
    assert desc is not None and "<script>alert(1)</script>: 3" in (desc.text or "")
    assert "<script>" not in svg  # escaped, never markup
    labels = [t.text for t in root.iter(SVG + "text") if t.get("class") == "chart-label"]
    assert labels == ["<script>alert(1)</script>", 'Hoster & Sons "Ltd"', "zero"]
    widths = [float(r.get("width", "0")) for r in root.iter(SVG + "rect")]
    assert widths[0] > widths[1] > widths[2] == 0.0
    assert widths[0] == pytest.approx(2 * widths[1])
    assert "style=" not in svg and "<script" not in svg


def test_chart_without_bars_and_long_labels() -> None:
    empty = ET.fromstring(bar_chart("c1", "T", "D.", [], empty="nothing yet"))
    assert any(t.text == "nothing yet" for t in empty.iter(SVG + "text"))
    long = "A" * 80
    root = ET.fromstring(bar_chart("c2", "T", "D.", [(long, 2.0)], unit="h"))
    label = next(t for t in root.iter(SVG + "text") if t.get("class") == "chart-label")
    assert label.text is not None and len(label.text) < 30 and label.text.endswith("…")
    row_title = root.find(f"{SVG}g/{SVG}title")
    assert row_title is not None and row_title.text == f"{long}: 2 h"  # the full label
    with pytest.raises(TypeError):
        bar_chart('x" onload="y', "T", "D.", [])


def test_control_characters_do_not_break_the_xml() -> None:
    ET.fromstring(bar_chart("c3", "T\x00", "D\x07.", [("a\x01b", 1.0)]))
