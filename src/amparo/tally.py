"""Match volume: how many lookups matched each bank per day, counted in memory and added to
the database now and then (the curator console's "finds per bank" chart reads it).

Counting must not slow lookups: a match only bumps a number in a lock-protected dict
(``(day, bank, source) -> n``); no lookup ever writes to the database. The counts are added
to the store's ``match_volume`` table with one additive upsert per flush:

- when a match comes in and the last flush is ``interval`` seconds old, on a thread of its
  own (a lookup served on the event loop never waits for the database);
- at the end of a scan and on :meth:`amparo.app.Amparo.close` (synchronously).

Each process flushes only its own increments, so several server processes on one database add
up. A flush that fails keeps its counts for the next one. Counts only: a bank name, a day and
a source kind, never a hash, a path or anything of the content.

What counts: one per lookup per bank it matched, however many of that bank's entries it
matched. A lookup is a piece of media, a request's signals when they name one content (exactly
one ``sha256``, as :meth:`amparo.checks.Checks.check_signals` takes them), else each signal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, date, timedelta

from amparo.clock import Clock, Monotonic, monotonic, utc_now
from amparo.matching import Match
from amparo.store.match_volume import MatchVolumeRepository, VolumeKey

_log = logging.getLogger(__name__)

FLUSH_SECONDS = 30.0
"""How old the unflushed counts may grow before the next match flushes them."""
LOOKUP = "lookup"
"""The source of a bare lookup whose caller did not say where it came from."""


class MatchTally:
    """Per-process match counts, flushed to ``match_volume`` (see the module docstring)."""

    def __init__(
        self,
        repository: MatchVolumeRepository,
        *,
        keep_days: int = 400,
        interval: float = FLUSH_SECONDS,
        clock: Clock = utc_now,
        monotonic: Monotonic = monotonic,
    ) -> None:
        self.repository = repository
        self.keep_days = keep_days
        self.interval = interval
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._counts: dict[VolumeKey, int] = {}
        self._flushed_at = monotonic()
        self._flushing: threading.Thread | None = None
        self._write_lock = threading.Lock()  # one flush writes at a time
        self._purged_on: date | None = None

    def add(self, results: Iterable[Sequence[Match]], source: str = LOOKUP) -> None:
        """Count one per result (a lookup's matches) per bank it matched."""
        day: date | None = None
        with self._lock:
            for matches in results:
                if not matches:
                    continue
                if day is None:
                    day = self.clock().astimezone(UTC).date()
                for bank in {m.bank for m in matches}:
                    key = (day, bank, source)
                    self._counts[key] = self._counts.get(key, 0) + 1
            if day is not None and self._due() and self._flushing is None:
                self._flushing = threading.Thread(
                    target=self._background, name="amparo-tally-flush", daemon=True
                )
                self._flushing.start()

    def pending(self) -> dict[VolumeKey, int]:
        """The counts not yet flushed (a copy)."""
        with self._lock:
            return dict(self._counts)

    def _due(self) -> bool:
        return self.monotonic() - self._flushed_at >= self.interval

    def _background(self) -> None:
        try:
            self.flush()
        except Exception:  # counted again next time; lookups never fail for it
            _log.exception("could not store the match counts; kept for the next flush")
        finally:
            with self._lock:
                self._flushing = None

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background flush under way (tests; close)."""
        thread = self._flushing
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def flush(self) -> int:
        """Add the counts gathered so far to the store now; how many matches went. On failure
        the counts are kept (added back) and the error raised."""
        with self._write_lock:
            with self._lock:
                counts, self._counts = self._counts, {}
                self._flushed_at = self.monotonic()
            if not counts:
                return 0
            try:
                stored = self.repository.add(counts)
            except BaseException:
                with self._lock:
                    for key, n in counts.items():
                        self._counts[key] = self._counts.get(key, 0) + n
                raise
            self._purge()
            return stored

    def _purge(self) -> None:
        """Once a day per process: delete the counts older than ``keep_days``."""
        today = self.clock().astimezone(UTC).date()
        if self.keep_days <= 0 or self._purged_on == today:
            return
        self._purged_on = today
        try:
            self.repository.purge(today - timedelta(days=self.keep_days))
        except Exception:
            _log.exception("could not delete old match counts")

    def close(self) -> None:
        """Flush what is left (a failure is logged: closing must not fail)."""
        self.wait()
        try:
            self.flush()
        except Exception:
            _log.exception("could not store the last match counts at close")
