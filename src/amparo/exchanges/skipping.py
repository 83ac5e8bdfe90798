"""Going past an unreadable page of a source read in time order (StopNCII, ThreatExchange).

An unreadable page gives no cursor to the next one, so the fetch quarantines the time window
just after the last record it read (``skip_seconds`` long, never past now) and continues
after it; the window is read again later (``refetch``, through :class:`QuarantinedWindow`).
So one bad page never stalls a collaboration, as one did HMA's for days. Several unreadable
pages in a row mean the source is failing, not one page: the fetch then stops at the last
committed batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amparo.clock import Clock
from amparo.errors import ExchangeError, InputError

MAX_BAD_PAGES_IN_A_ROW = 5


class PageSkipper:
    """Counts unreadable pages in a row and gives the window to quarantine after one."""

    def __init__(self, source: str, skip_seconds: int, clock: Clock) -> None:
        self.source = source
        self.skip_seconds = skip_seconds
        self.clock = clock
        self.bad_in_a_row = 0

    def skip(self, high: int, reason: str) -> int:
        """After an unreadable page following time ``high`` (epoch seconds): the end of the
        window to quarantine, where the fetch goes on. Raises :class:`ExchangeError` after
        :data:`MAX_BAD_PAGES_IN_A_ROW` in a row."""
        self.bad_in_a_row += 1
        if self.bad_in_a_row >= MAX_BAD_PAGES_IN_A_ROW:
            raise ExchangeError(
                f"{self.source} returned {self.bad_in_a_row} unreadable pages in a row "
                f"(last: {reason})",
                hint="the service may be failing; the next fetch resumes from the last "
                "committed batch and the quarantined windows are retried",
            )
        now = int(self.clock().timestamp())
        return max(high + 1, min(high + self.skip_seconds, now))

    def read_one(self) -> None:
        """A page was read: the count of bad ones in a row starts again."""
        self.bad_in_a_row = 0


@dataclass(frozen=True)
class QuarantinedWindow:
    """A window to read again (``refetch``): the records of ``[start, stop)`` (epoch
    seconds), only the one named ``only`` when it is set."""

    start: int
    stop: int
    only: Any = None

    @classmethod
    def from_retry(
        cls, retry: dict[str, Any], kind: str, start_key: str, stop_key: str
    ) -> QuarantinedWindow:
        """The window a quarantined item's ``retry`` names (each exchange type keeps its own
        keys); :class:`InputError` when it names none."""
        try:
            start, stop = int(retry[start_key]), int(retry[stop_key])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"not a {kind} retry: {retry!r}") from None
        return cls(start, stop, retry.get("record_id"))

    def still_unreadable(self, source: str, reason: str) -> ExchangeError:
        """The error for a page of the window that is still unreadable: the item stays
        quarantined."""
        return ExchangeError(
            f"{source} still returns an unreadable page for {self.start}..{self.stop}: {reason}",
            hint="it stays quarantined and is tried again later",
        )
