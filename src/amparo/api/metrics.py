"""Prometheus metrics, kept in a registry of the app's own (one app, one set of series).

Under ``amparo serve`` every worker process writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` (a private directory ``serve`` makes fresh at start), and a scrape
of any worker reads all of them (``MultiProcessCollector``): the figures are the server's, not
the one worker's that happened to answer.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from amparo.clock import Monotonic, monotonic
from amparo.errors import AmparoError
from amparo.exchanges.model import CollaborationStatus

log = logging.getLogger("amparo.api")

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess_dir(home: Path) -> Path:
    """Make ``HOME/run/metrics`` empty and private (0700), point this process and the workers it
    starts at it, and switch prometheus_client to its file-backed values."""
    run = home / "run"
    run.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = run / "metrics"
    if path.is_symlink() or path.is_file():
        raise AmparoError(
            f"{path} is not a directory",
            hint="remove it; amparo serve keeps the workers' metrics files there",
        )
    if path.exists():
        shutil.rmtree(path)  # a previous run's figures (and dead workers' files)
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)
    os.environ[MULTIPROC_ENV] = str(path)
    # prometheus_client picks its value class when first imported: pick again now.
    prometheus_values.ValueClass = prometheus_values.get_value_class()  # type: ignore[no-untyped-call]
    return path


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = multiprocess_dir() is not None
        self.latency = Histogram(
            "amparo_http_request_duration_seconds",
            "Time to answer a request, by route template.",
            ["method", "route", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.matches = Counter(
            "amparo_matches_total",
            "Matches reported, by bank and signal type.",
            ["bank", "signal_type"],
            registry=self.registry,
        )
        self.lookups = Counter(
            "amparo_lookups_total",
            "Items looked up (signals or media).",
            ["kind"],
            registry=self.registry,
        )
        # Across workers: the largest index, the least advanced checkpoint, the stalest age
        # (of the workers alive).
        self.index_entries = Gauge(
            "amparo_index_entries",
            "Rows in the in-memory PDQ index: entries and the crop variants of media added "
            "to banks (the largest of the workers').",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.index_checkpoint = Gauge(
            "amparo_index_checkpoint",
            "Change-log position the index reflects (the least advanced worker's).",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        self.index_age = Gauge(
            "amparo_index_age_seconds",
            "Seconds since the index was last brought up to date (the stalest worker's).",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.rate_limited = Counter(
            "amparo_rate_limited_total",
            "Requests refused by a key's rate limit.",
            registry=self.registry,
        )
        self.probe_alerts = Counter(
            "amparo_probe_alerts_total",
            "Episodes of a key sending near-identical matched queries (hash reconstruction).",
            registry=self.registry,
        )
        self.exchange_loop_errors = Counter(
            "amparo_exchange_loop_errors_total",
            "Steps of serve's exchange loop (fetch, opinions, ...) that raised.",
            ["step"],
            registry=self.registry,
        )
        self._collectors: list[Collector] = []

    def add_collector(self, collector: Collector) -> None:
        """Figures read at scrape time from elsewhere (the database): the same for every
        worker, so they bypass the multiprocess files and are served as read."""
        self._collectors.append(collector)
        if not self.multiprocess:
            self.registry.register(collector)

    def render(self) -> bytes:
        path = multiprocess_dir()
        if self.multiprocess and path is not None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
            for collector in self._collectors:
                registry.register(collector)
            return generate_latest(registry)
        return generate_latest(self.registry)


class ExchangeCollector(Collector):
    """Per-collaboration series, read from the database at scrape time (``list_status``:
    ``ExchangeService.list``), kept ``cache_seconds`` so frequent scrapes cost one read.

    Why a collector and not gauges set by the fetcher: the figures live in the database and
    the fetch that changed them may have run in another worker, another ``amparo serve`` or
    ``amparo exchange fetch``; every worker reading the same rows answers the same, which
    multiprocess gauges (each worker's last write) could not. A collaboration never fetched
    has no ``last_success`` or ``lag`` sample (absent, not zero). When the statuses cannot
    be read, ``amparo_exchange_status_error`` is 1 and no per-collaboration series is given."""

    def __init__(
        self,
        list_status: Callable[[], Sequence[CollaborationStatus]],
        *,
        cache_seconds: float = 5.0,
        clock: Monotonic = monotonic,
    ) -> None:
        self.list_status = list_status
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, list[CollaborationStatus] | None] | None = None

    def describe(self) -> Iterable[Metric]:
        # Names only: registering must not read the database (auto_describe would collect).
        return list(self._families().values())

    def _statuses(self) -> list[CollaborationStatus] | None:
        with self._lock:
            now = self.clock()
            if self._cached is not None and now - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            statuses: list[CollaborationStatus] | None
            try:
                statuses = list(self.list_status())
            except Exception:
                log.warning("could not read the collaborations for /metrics", exc_info=True)
                statuses = None
            self._cached = (now, statuses)
            return statuses

    def collect(self) -> Iterable[Metric]:
        statuses = self._statuses()
        families = self._families()
        families["error"].add_metric([], 0.0 if statuses is not None else 1.0)
        for s in statuses or []:
            c = s.collaboration
            name = [c.name]
            families["info"].add_metric([c.name, c.exchange, c.bank], 1.0)
            families["enabled"].add_metric(name, 1.0 if c.enabled else 0.0)
            if s.last_fetch_at is not None:
                families["last_success"].add_metric(name, s.last_fetch_at.timestamp())
            if s.lag_seconds is not None:
                families["lag"].add_metric(name, float(s.lag_seconds))
            families["added"].add_metric(name, float(s.entries_added))
            families["removed"].add_metric(name, float(s.entries_removed))
            families["records"].add_metric(name, float(s.records))
            families["quarantined"].add_metric(name, float(s.quarantined))
            families["pending"].add_metric(name, float(s.pending_opinions))
            families["failed"].add_metric(name, 1.0 if last_fetch_failed(s) else 0.0)
        return list(families.values())

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily | CounterMetricFamily]:
        by = ["collaboration"]

        def gauge(name: str, text: str, labels: list[str] | None = None) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, labels=by if labels is None else labels)

        def counter(name: str, text: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, text, labels=by)

        return {
            "error": gauge(
                "amparo_exchange_status_error",
                "1 when the collaborations could not be read at this scrape.",
                [],
            ),
            "info": gauge(
                "amparo_exchange_info",
                "One per collaboration: its exchange type and target bank.",
                ["collaboration", "exchange", "bank"],
            ),
            "enabled": gauge("amparo_exchange_enabled", "1 when fetched on schedule (not paused)."),
            "last_success": gauge(
                "amparo_exchange_last_success_timestamp_seconds",
                "Unix time the last fetch that finished without error ended.",
            ),
            "lag": gauge("amparo_exchange_lag_seconds", "Seconds since the last successful fetch."),
            "added": counter("amparo_exchange_entries_added", "Entries the collaboration added."),
            "removed": counter(
                "amparo_exchange_entries_removed", "Entries withdrawn or deleted by the source."
            ),
            "records": gauge("amparo_exchange_records", "Live records the collaboration holds."),
            "quarantined": gauge(
                "amparo_exchange_quarantined_records",
                "Malformed records or pages kept for a later retry.",
            ),
            "pending": gauge(
                "amparo_exchange_pending_opinions",
                "Reviewers' opinions queued for the source, not yet delivered.",
            ),
            "failed": gauge(
                "amparo_exchange_last_fetch_failed", "1 when the latest fetch attempt failed."
            ),
        }


def last_fetch_failed(status: CollaborationStatus) -> bool:
    """The latest attempt ended in an error (an error older than the last success is not)."""
    if not status.last_error:
        return False
    if status.last_fetch_at is None or status.last_attempt_at is None:
        return True
    return status.last_attempt_at > status.last_fetch_at
