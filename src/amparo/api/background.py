"""Exchange work in ``amparo serve``: every ``exchange_poll_seconds``, fetch the collaborations
that are due, then send reviewers' queued opinions to their sources, then any further steps
(retroactive matching joins here: ``loop.steps.append(("retro", amparo.retro.catch_up))``).

Each step runs in a worker thread, never on the event loop: a fetch is blocking I/O (HTTP and
the database) that may take minutes. A step that raises is logged and the next step and the
next tick run anyway: one broken source must not stop the others, nor the loop.

With several workers (``amparo serve --workers N``) every worker runs this loop. That is safe
by construction: a fetch takes the collaboration's lease in the database first, so exactly
one process fetches a collaboration at a time and the others skip it (``fetched=False``);
opinions are claimed the same way. More workers only mean more frequent looks for due work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from amparo.app import Amparo
from amparo.config import Settings
from amparo.exchanges.model import FetchResult

log = logging.getLogger("amparo.exchanges.background")

Step = tuple[str, Callable[[], object]]
"""A named unit of work the loop runs each tick (in a thread)."""


def default_steps(amparo: Amparo) -> list[Step]:
    """What each tick does, in order. The lambdas look the service up at call time, so a
    service replaced after the loop was built (tests' fakes) is the one called."""
    return [
        ("fetch", lambda: amparo.exchanges.fetch_due()),
        ("opinions", lambda: amparo.exchanges.deliver_opinions()),
        # New entries from imports and bank adds too (fetches catch up at once); with
        # retro_match_days 0 this only forgets anything retained earlier.
        ("retro", lambda: amparo.retro.catch_up()),
    ]


@dataclass
class TickReport:
    """What one tick did: each step's return value, or the exception it raised."""

    results: dict[str, object] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)

    @property
    def fetches(self) -> list[FetchResult]:
        found = self.results.get("fetch")
        if isinstance(found, list):
            return [r for r in found if isinstance(r, FetchResult)]
        return []


@dataclass
class ExchangeLoop:
    """The background loop: ``steps`` run in order every ``interval`` seconds.

    ``steps`` is a plain list: add a step before the app starts (``app.state.exchange_loop``
    in :func:`amparo.api.app.create_app`) to run it in the same loop and thread."""

    steps: list[Step]
    interval: float
    on_error: Callable[[str, BaseException], None] | None = None
    """Told of each failed step (the app counts them in ``amparo_exchange_loop_errors_total``)."""
    ticks: int = 0

    @classmethod
    def for_app(cls, amparo: Amparo, settings: Settings) -> ExchangeLoop:
        return cls(steps=default_steps(amparo), interval=max(0.05, settings.exchange_poll_seconds))

    def tick(self) -> TickReport:
        """Run every step once (blocking: call it in a thread). Never raises: a failed step
        is logged, reported to ``on_error`` and recorded in the report."""
        report = TickReport()
        for name, step in list(self.steps):
            try:
                report.results[name] = step()
            except Exception as exc:
                report.errors[name] = exc
                log.exception("exchange step %r failed; the loop goes on", name)
                if self.on_error is not None:
                    try:
                        self.on_error(name, exc)
                    except Exception:
                        log.exception("reporting a failed exchange step failed")
        for result in report.fetches:
            if result.error:
                log.warning("fetching %s failed: %s", result.collaboration, result.error)
            elif result.fetched:
                log.info(
                    "fetched %s: %d upserts, %d deletions, %d quarantined",
                    result.collaboration,
                    result.upserts,
                    result.deletions,
                    result.quarantined,
                )
        self.ticks += 1
        return report

    async def run(
        self,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        to_thread: Callable[[Callable[[], TickReport]], Awaitable[TickReport]] | None = None,
        shutdown_grace: float = 10.0,
    ) -> None:
        """Tick, sleep, repeat, until cancelled. The first tick runs at once (a server that
        was down catches up on start). Cancelled mid-tick (shutdown), it waits up to
        ``shutdown_grace`` seconds for the tick's thread, so the store is not closed under a
        running step; a longer fetch is cut off by the process exit and resumes from its last
        committed batch. ``sleep`` and ``to_thread`` are seams for tests."""
        run_in_thread = to_thread or _to_thread
        while True:
            running = asyncio.ensure_future(run_in_thread(self.tick))
            try:
                await asyncio.shield(running)
            except asyncio.CancelledError:
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(running, shutdown_grace)
                raise
            except Exception:  # tick never raises; a failing thread pool might
                log.exception("the exchange loop's tick failed; trying again shortly")
            await sleep(self.interval)


async def _to_thread(func: Callable[[], TickReport]) -> TickReport:
    return await asyncio.to_thread(func)
