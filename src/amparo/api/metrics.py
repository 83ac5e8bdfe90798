"""Prometheus metrics, kept in a registry of the app's own (one app, one set of series)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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
        self.index_entries = Gauge(
            "amparo_index_entries",
            "Entries in the in-memory PDQ index.",
            registry=self.registry,
        )
        self.index_checkpoint = Gauge(
            "amparo_index_checkpoint",
            "Change-log position the index reflects.",
            registry=self.registry,
        )
        self.index_age = Gauge(
            "amparo_index_age_seconds",
            "Seconds since the index was last brought up to date.",
            registry=self.registry,
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
        return generate_latest(self.registry)
