"""Time, one way: UTC everywhere, and clocks that tests can replace.

Services that decide by time (leases, retention, rate limits, undo windows, sessions) take a
``clock`` (a :data:`Clock` for wall time, a :data:`Monotonic` for intervals) with these
defaults, so tests move time instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import overload

Clock = Callable[[], datetime]
"""Wall time, timezone-aware UTC."""
Monotonic = Callable[[], float]
"""Seconds from an arbitrary origin that never goes back (intervals, deadlines)."""


def utc_now() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


monotonic: Monotonic = time.monotonic


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: datetime | None) -> datetime | None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """A stored time as UTC: SQLite hands back naive datetimes (everything Amparo stores is
    UTC); an aware time in another zone is converted."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
