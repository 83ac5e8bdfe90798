"""Clocks that tests move by hand, for the ``clock`` parameters of services that decide by time
(leases, backoff, rate limits): a test advances time instead of sleeping through it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from amparo.clock import utc_now


class ManualClock:
    """Wall time (an :data:`amparo.clock.Clock`) that moves only when told to.

    Starts at the real now unless told otherwise, so the rows it stamps sit among rows a real
    clock stamps (a database that compares them with its own now still sees sensible times).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start if start is not None else utc_now()
        if self.now.tzinfo is None:
            self.now = self.now.replace(tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class ManualMonotonic:
    """Seconds (an :data:`amparo.clock.Monotonic`) that move only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        assert seconds >= 0, "a monotonic clock never goes back"
        self.now += seconds
        return self.now
