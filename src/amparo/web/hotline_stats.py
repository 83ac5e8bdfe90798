"""The hotline's stats page (``/review/hotline/stats``): the figures a hotline publishes, as
tables and server-rendered SVG charts, in Spanish, Brazilian Portuguese or English, with the
same figures to download as CSV or JSON (``?format=csv|json``).

Any signed-in key may see it (reviewers and curators). No JavaScript and no inline styles:
the charts are inline ``<svg>`` elements coloured by ``static/hotline.css``.
"""

from __future__ import annotations

from typing import Any

from babel import Locale
from babel.numbers import format_decimal, format_percent
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from markupsafe import Markup

from amparo.hotline.charts import bar_chart
from amparo.hotline.figures import QUANTILES, UNKNOWN, WITHIN_DAYS, GroupFigures, HotlineFigures
from amparo.i18n import Translate, translator
from amparo.web.pages import guarded, language_of, page, remember_language, service_of

router = APIRouter()

signed_in = guarded(lambda s: s.may_review or s.may_curate)
SHOWN_IN_CHARTS = 15
STATUS_LABELS = {
    "new": "new",
    "unreachable": "unreachable",
    "assessment": "waiting for assessment",
    "confirmed": "confirmed",
    "notified": "notified",
    "forwarded": "forwarded",
    "removed": "removed",
    "closed": "closed",
}
"""English labels of the report statuses (translated in the ``stats`` domain)."""


class Numbers:
    """Numbers written the way the page's language writes them."""

    def __init__(self, lang: str) -> None:
        self.locale = Locale.parse(lang)

    def count(self, value: int) -> str:
        return str(format_decimal(value, locale=self.locale))

    def hours(self, value: float | None) -> str:
        return "–" if value is None else str(format_decimal(value, "#,##0.0", locale=self.locale))

    def share(self, value: float | None) -> str:
        return "–" if value is None else str(format_percent(value, locale=self.locale))

    def country(self, code: str, _: Translate) -> str:
        if code == UNKNOWN:
            return _("unknown")
        name = self.locale.territories.get(code)
        return f"{name} ({code})" if name else code


def _row(group: GroupFigures, name: str, n: Numbers) -> dict[str, Any]:
    return {
        "name": name,
        "reports": n.count(group.reports),
        "open_urls": n.count(group.open_urls),
        "notices_sent": n.count(group.notices_sent),
        "removed": n.count(group.removed),
        "hours": [n.hours(group.removal_hours.get(f"p{q}")) for q in QUANTILES],
        "within": [n.share(group.removed_within.get(f"{d}d")) for d in WITHIN_DAYS],
        "reappearances": n.count(group.reappearances),
    }


def _charts(figures: HotlineFigures, _: Translate, n: Numbers) -> list[tuple[str, Markup]]:
    """(visible caption, ``<svg>``) per chart."""
    provider_name = {UNKNOWN: _("unknown")}
    specs = [
        (
            "chart-removal",
            _("Time to removal"),
            _("Reports by time from the first notice to confirmed removal."),
            [(_(label), float(count)) for _key, label, count in figures.removal_buckets],
            _("No removal confirmed yet."),
        ),
        (
            "chart-countries",
            _("Reports per hosting country"),
            _("URL reports by the country where the content was hosted."),
            [
                (n.country(g.name, _), float(g.reports))
                for g in figures.by_country[:SHOWN_IN_CHARTS]
            ],
            _("No reports yet."),
        ),
        (
            "chart-providers",
            _("Reports per provider"),
            _("URL reports by the hosting provider."),
            [
                (provider_name.get(g.name, g.name), float(g.reports))
                for g in figures.by_provider[:SHOWN_IN_CHARTS]
            ],
            _("No reports yet."),
        ),
    ]
    # bar_chart escapes every label, title and description itself.
    return [
        (title, Markup(bar_chart(chart_id, title, desc, bars, empty=empty)))
        for chart_id, title, desc, bars, empty in specs
    ]


@router.get("/hotline/stats")
async def stats_page(request: Request) -> Response:
    session = await signed_in(request)
    if isinstance(session, Response):
        return session
    figures: HotlineFigures = await run_in_threadpool(
        service_of(request).amparo.hotline.figures.figures
    )
    wanted = request.query_params.get("format")
    if wanted == "json":
        return JSONResponse(
            figures.to_json(),
            headers={"content-disposition": 'attachment; filename="hotline-figures.json"'},
        )
    if wanted == "csv":
        return Response(
            figures.to_csv(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="hotline-figures.csv"'},
        )
    lang = language_of(request)
    _ = translator(lang, "stats")
    n = Numbers(lang)
    overall = figures.overall
    response = page(
        request,
        "hotline_stats.html",
        {
            "_": _,
            "lang": lang,
            "generated_at": figures.generated_at.strftime("%Y-%m-%d %H:%M"),
            "overall": _row(overall, _("All reports"), n),
            "noticed": n.count(overall.noticed),
            "statuses": [
                (_(STATUS_LABELS.get(s, s)), n.count(c)) for s, c in figures.by_status.items()
            ],
            "providers": [
                _row(g, _("unknown") if g.name == UNKNOWN else g.name, n)
                for g in figures.by_provider
            ],
            "countries": [_row(g, n.country(g.name, _), n) for g in figures.by_country],
            "charts": _charts(figures, _, n),
            "quantiles": QUANTILES,
            "within_days": WITHIN_DAYS,
        },
        session=session,
    )
    return remember_language(request, response, lang)
