"""What every route shares: the application core, keys, limits, fetching and metrics."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import anyio.to_thread
from fastapi import Request

from amparo.api.metrics import Metrics
from amparo.app import Amparo
from amparo.clock import Monotonic, monotonic
from amparo.config import SYSTEM_ACTOR, Settings
from amparo.errors import DatabaseSlowError
from amparo.fetch import Fetcher, FetchLimits, FetchSlots
from amparo.keys import ApiKey, KeyService, RateLimiter, parse_rate_limits
from amparo.matching import Match
from amparo.probes import ProbeAlert, ProbeDetector, sees_distance
from amparo.signals import signal_types

log = logging.getLogger("amparo.api")
T = TypeVar("T")
PROBED_TYPES = frozenset(st.name for st in signal_types("hamming"))
"""Signal types whose near-identical queries can reconstruct a hash: those matched within a
Hamming distance (PDQ), where one flipped bit at a time walks a query across the threshold."""


@dataclass
class IndexState:
    """When the in-memory index was last brought up to date, and what went wrong if not."""

    refreshed_at: float = 0.0
    """``time.monotonic()`` of the last successful refresh; 0 before the first."""
    error: str | None = None


@dataclass
class Service:
    settings: Settings
    amparo: Amparo
    keys: KeyService
    limiter: RateLimiter
    fetcher: Fetcher
    metrics: Metrics
    fetch_slots: FetchSlots
    probes: ProbeDetector = field(default_factory=ProbeDetector)
    index: IndexState = field(default_factory=IndexState)
    _refresh_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(
        cls, settings: Settings, amparo: Amparo | None = None, *, clock: Monotonic = monotonic
    ) -> Service:
        """``clock`` times the rate limits and the key cache (tests move one)."""
        core = amparo or Amparo(settings)
        return cls(
            settings=settings,
            amparo=core,
            keys=KeyService(core.store, cache_seconds=settings.api_key_cache_seconds, clock=clock),
            limiter=RateLimiter(parse_rate_limits(settings.api_rate_limits), clock=clock),
            fetcher=Fetcher(FetchLimits.from_settings(settings)),
            metrics=Metrics(),
            fetch_slots=FetchSlots.from_settings(settings),
            probes=ProbeDetector(
                window=settings.probe_window,
                near_bits=settings.probe_near_bits,
                max_near=settings.probe_max_near,
                period_seconds=settings.probe_period_seconds,
                cooldown_seconds=settings.probe_cooldown_seconds,
                throttle=settings.probe_throttle,
            ),
        )

    def refresh_index(self) -> None:
        """Bring the matcher's index up to date with the database (the change log)."""
        with self._refresh_lock:
            try:
                self.amparo.matcher.refresh()
            except Exception as exc:
                self.index.error = str(exc)
                log.exception("index refresh failed")
                raise
            self.index.refreshed_at = time.monotonic()
            self.index.error = None
        self.update_index_metrics()

    async def off_loop(self, fn: Callable[..., T], *args: object) -> T:
        """Run a lookup that may read the database in a worker thread, for at most
        ``lookup_database_timeout_seconds``: past it the request gets DatabaseSlowError (503)
        and the thread is left to finish (or fail) on its own, holding no request open."""
        timeout = self.settings.lookup_database_timeout_seconds
        call = functools.partial(fn, *args)
        try:
            return await asyncio.wait_for(
                anyio.to_thread.run_sync(call, abandon_on_cancel=True), timeout
            )
        except TimeoutError:
            raise DatabaseSlowError(
                f"the database did not answer within {timeout:g} s",
                hint="retry shortly; if this persists, look for long transactions or locks "
                "on the database (lookup_database_timeout_seconds sets the wait)",
            ) from None

    def index_age(self) -> float | None:
        if not self.index.refreshed_at:
            return None
        return time.monotonic() - self.index.refreshed_at

    def update_index_metrics(self) -> None:
        matcher = self.amparo.matcher
        self.metrics.index_entries.set(len(matcher.index))
        self.metrics.index_checkpoint.set(matcher.checkpoint)
        age = self.index_age()
        if age is not None:
            self.metrics.index_age.set(age)

    def count_matches(self, matches: list[Match]) -> None:
        for m in matches:
            self.metrics.matches.labels(m.bank, m.signal_type).inc()

    def screen(
        self, key: ApiKey, queries: Sequence[tuple[str, str]], results: Sequence[list[Match]]
    ) -> None:
        """Feed one request's matched queries to the probe detector (keys that may read exact
        distances are not screened: they may read the lists too). Raises ProbeSuspectedError
        when this request starts an episode and throttling is on."""
        if sees_distance(key):
            return
        matched = [
            value
            for (signal_type, value), found in zip(queries, results, strict=True)
            if found and signal_type in PROBED_TYPES
        ]
        alert = self.probes.observe(key.id, matched) if matched else None
        if alert is not None:
            self._alert(key, alert)
            self.probes.check(key.id)

    def _alert(self, key: ApiKey, alert: ProbeAlert) -> None:
        self.metrics.probe_alerts.inc()
        log.warning(
            "key %r sent %d matched queries a few bits apart: suspected hash reconstruction",
            key.name,
            alert.near_queries,
        )
        details = {"near_queries": alert.near_queries, "period_seconds": alert.period_seconds}
        # The audit write is rare (once an episode) but may run on the event loop: a thread.
        threading.Thread(target=self._audit_alert, args=(key.actor, details), daemon=True).start()

    def _audit_alert(self, target: str, details: dict[str, object]) -> None:
        try:
            self.amparo.store.audit_log.append(
                "probe.suspected", target, dict(details), actor=SYSTEM_ACTOR
            )
        except Exception:
            log.exception("could not record a probe alert in the audit log")

    def close(self) -> None:
        self.amparo.close()


async def get_service(request: Request) -> Service:
    """The app's service (an async dependency: no thread hop for something this cheap)."""
    service: Service = request.app.state.service
    return service
