"""Prometheus metrics, kept in a registry of the app's own (one app, one set of series).

Under ``amparo serve`` every worker process writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` (a private directory ``serve`` makes fresh at start), and a scrape
of any worker reads all of them (``MultiProcessCollector``): the figures are the server's, not
the one worker's that happened to answer.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector

from amparo.errors import AmparoError

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
            "Entries in the in-memory PDQ index (the largest of the workers').",
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

    def render(self) -> bytes:
        path = multiprocess_dir()
        if self.multiprocess and path is not None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
