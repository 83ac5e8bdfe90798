"""What every route shares: the application core, keys, limits, fetching and metrics."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from fastapi import Request

from amparo.api.metrics import Metrics
from amparo.app import Amparo
from amparo.config import Settings
from amparo.fetch import Fetcher, FetchLimits, FetchSlots
from amparo.keys import KeyService, RateLimiter, parse_rate_limits
from amparo.matching import Match

log = logging.getLogger("amparo.api")


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
    index: IndexState = field(default_factory=IndexState)
    _refresh_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, settings: Settings, amparo: Amparo | None = None) -> Service:
        core = amparo or Amparo(settings)
        return cls(
            settings=settings,
            amparo=core,
            keys=KeyService(core.store, cache_seconds=settings.api_key_cache_seconds),
            limiter=RateLimiter(parse_rate_limits(settings.api_rate_limits)),
            fetcher=Fetcher(FetchLimits.from_settings(settings)),
            metrics=Metrics(),
            fetch_slots=FetchSlots.from_settings(settings),
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

    def close(self) -> None:
        self.amparo.close()


async def get_service(request: Request) -> Service:
    """The app's service (an async dependency: no thread hop for something this cheap)."""
    service: Service = request.app.state.service
    return service
