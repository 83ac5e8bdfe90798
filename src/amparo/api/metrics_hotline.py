"""The hotline's figures as Prometheus series, read from the database at scrape time.

A collector, as :class:`~amparo.api.metrics.ExchangeCollector` is, for the same reason: the
reports live in the database and change in whichever process crawled, noticed or re-checked
them, so every worker computing them from the same rows answers the same. The figures walk
every report (:meth:`amparo.hotline.figures.Figures.figures`), so they are kept
``cache_seconds`` and frequent scrapes cost one walk. When they cannot be read,
``amparo_hotline_figures_error`` is 1 and no other series is given.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from amparo.clock import Monotonic, monotonic
from amparo.hotline.figures import QUANTILES, HotlineFigures

log = logging.getLogger("amparo.api")


class HotlineCollector(Collector):
    """``amparo_hotline_reports{status}``, ``amparo_hotline_open_urls``,
    ``amparo_hotline_notices_sent_total``, ``amparo_hotline_removed``,
    ``amparo_hotline_reappearances`` and ``amparo_hotline_removal_hours{quantile}`` (absent
    until a removal was confirmed)."""

    def __init__(
        self,
        figures: Callable[[], HotlineFigures],
        *,
        cache_seconds: float = 30.0,
        clock: Monotonic = monotonic,
    ) -> None:
        self.figures = figures
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, HotlineFigures | None] | None = None

    def describe(self) -> Iterable[Metric]:
        # Names only: registering must not read the database (auto_describe would collect).
        return list(self._families().values())

    def _read(self) -> HotlineFigures | None:
        with self._lock:
            now = self.clock()
            if self._cached is not None and now - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            figures: HotlineFigures | None
            try:
                figures = self.figures()
            except Exception:
                log.warning("could not compute the hotline figures for /metrics", exc_info=True)
                figures = None
            self._cached = (now, figures)
            return figures

    def collect(self) -> Iterable[Metric]:
        figures = self._read()
        families = self._families()
        families["error"].add_metric([], 0.0 if figures is not None else 1.0)
        if figures is None:
            return [families["error"]]
        for status, count in figures.by_status.items():
            families["reports"].add_metric([status], float(count))
        overall = figures.overall
        families["open"].add_metric([], float(overall.open_urls))
        families["notices"].add_metric([], float(overall.notices_sent))
        families["removed"].add_metric([], float(overall.removed))
        families["reappearances"].add_metric([], float(overall.reappearances))
        for q in QUANTILES:
            hours = overall.removal_hours.get(f"p{q}")
            if hours is not None:
                families["removal"].add_metric([f"{q / 100:g}"], hours)
        return list(families.values())

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily | CounterMetricFamily]:
        return {
            "error": GaugeMetricFamily(
                "amparo_hotline_figures_error",
                "1 when the hotline figures could not be read at this scrape.",
            ),
            "reports": GaugeMetricFamily(
                "amparo_hotline_reports", "URL reports by status.", labels=["status"]
            ),
            "open": GaugeMetricFamily(
                "amparo_hotline_open_urls",
                "Reported URLs still being handled (not removed, not closed).",
            ),
            "notices": CounterMetricFamily(
                "amparo_hotline_notices_sent",
                "Notices, repeats, escalations and forwards sent, ever.",
            ),
            "removed": GaugeMetricFamily(
                "amparo_hotline_removed", "URL reports whose content was confirmed removed."
            ),
            "reappearances": GaugeMetricFamily(
                "amparo_hotline_reappearances", "Times removed content came back online."
            ),
            "removal": GaugeMetricFamily(
                "amparo_hotline_removal_hours",
                "Hours from the first notice to confirmed removal (nearest-rank quantiles).",
                labels=["quantile"],
            ),
        }
