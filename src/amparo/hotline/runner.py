"""The hotline's scheduler: one pass crawls the reports waiting for it, attributes confirmed
reports to their host, sends the notices due and re-checks noticed reports.

``amparo serve`` calls :meth:`HotlineRunner.run_once` every ``hotline_poll_seconds`` in
every worker (and ``amparo hotline run`` from the command line); a database lease
(``hotline:run``) lets one process at a time do a pass, on any machine sharing the
database. The others return at once with an empty :class:`PassReport`. The lease is renewed
while the pass runs (between steps, and by a heartbeat thread during a long one); a holder
that died lets go when it expires.

Each step is guarded: an error in one (or one not built yet) is logged and counted, and the
others still run. Within the attribution step each report is attributed on its own, so one
failing report does not stop the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from amparo.errors import ConfigError
from amparo.hotline.context import HotlineContext
from amparo.hotline.notifying import Notifier
from amparo.hotline.rechecks import Rechecker
from amparo.hotline.verify import Verifier
from amparo.store.leases import default_holder

log = logging.getLogger(__name__)

LEASE_NAME = "hotline:run"
ATTRIBUTED_STATUSES = ("confirmed", "assessment")
"""Reports attributed when they have no attribution yet (the notifier needs it)."""


@dataclass
class PassReport:
    """What one pass of the scheduler did."""

    crawled: int = 0
    attributed: int = 0
    noticed: int = 0
    rechecked: int = 0
    errors: int = 0
    ran: bool = False
    """False when another process held the lease (nothing was done)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Step name -> the last error it met (for the logs and ``amparo hotline run``)."""


class HotlineRunner:
    """Runs the hotline's passes (see the module's docstring)."""

    def __init__(
        self, ctx: HotlineContext, verifier: Verifier, notifier: Notifier, rechecker: Rechecker
    ) -> None:
        self.ctx = ctx
        self.verifier = verifier
        self.notifier = notifier
        self.rechecker = rechecker
        self.holder = default_holder()
        self.lease_seconds = max(60.0, 10 * ctx.settings.hotline_poll_seconds)
        """How long the pass's lease lasts unless renewed (the heartbeat renews it every
        third of that)."""

    def run_once(self) -> PassReport:
        """One pass of the scheduler (crawls, attribution, notices, re-checks due now)."""
        ctx = self.ctx
        report = PassReport()
        token = ctx.leases.acquire(LEASE_NAME, self.holder, self.lease_seconds, ctx.clock())
        if token is None:
            return report
        report.ran = True
        heartbeat = _Heartbeat(self, token)
        heartbeat.start()
        try:
            steps: list[tuple[str, str, Callable[[datetime], int]]] = [
                ("crawl", "crawled", lambda now: self.verifier.crawl_due(now)),
                ("attribute", "attributed", lambda now: self.attribute_due(report)),
                ("notify", "noticed", lambda now: self.notifier.notify_due(now)),
                ("recheck", "rechecked", lambda now: self.rechecker.recheck_due(now)),
            ]
            for name, counter, step in steps:
                now = ctx.clock()
                if heartbeat.lost.is_set() or not ctx.leases.renew(
                    LEASE_NAME, token, self.lease_seconds, now
                ):
                    log.warning("the hotline lease was taken over; this pass stops")
                    report.errors += 1
                    report.failed["lease"] = "lost the lease"
                    break
                try:
                    setattr(report, counter, getattr(report, counter) + step(now))
                except NotImplementedError:
                    report.errors += 1
                    report.failed[name] = "not implemented"
                    log.warning("hotline step %r is not available yet", name)
                except Exception as exc:
                    report.errors += 1
                    report.failed[name] = str(exc)
                    log.exception("hotline step %r failed; the pass goes on", name)
        finally:
            heartbeat.stop()
            ctx.leases.release(LEASE_NAME, token)
        return report

    def attribute_due(self, report: PassReport | None = None, *, limit: int = 50) -> int:
        """Attribute reports that need it and have no attribution yet; how many. A report
        that fails is logged and counted in ``report.errors``; a configuration error (a
        database file missing) fails the whole step."""
        ctx = self.ctx
        done = 0
        for report_id in ctx.records.unattributed(ATTRIBUTED_STATUSES, limit):
            try:
                self.verifier.attributor.attribute_report(report_id)
            except ConfigError:
                raise  # a setting to fix, the same for every report: fail the step once
            except Exception as exc:
                log.exception("attributing URL report %d failed", report_id)
                if report is not None:
                    report.errors += 1
                    report.failed["attribute"] = str(exc)
            else:
                done += 1
        return done

    def run_forever(
        self, stop: threading.Event | None = None, interval: float | None = None
    ) -> None:
        """Pass after pass, ``interval`` seconds apart (``hotline_poll_seconds`` unless
        given), until ``stop`` is set (``amparo hotline run --follow``)."""
        stop = stop or threading.Event()
        wait = interval if interval is not None else self.ctx.settings.hotline_poll_seconds
        while not stop.is_set():
            try:
                result = self.run_once()
            except Exception:
                log.exception("a hotline pass failed; the next one runs in %.0f s", wait)
            else:
                if result.ran:
                    log.info(
                        "hotline pass: %d crawled, %d attributed, %d noticed, %d re-checked, "
                        "%d errors",
                        result.crawled,
                        result.attributed,
                        result.noticed,
                        result.rechecked,
                        result.errors,
                    )
            stop.wait(max(0.05, wait))


class _Heartbeat:
    """Renews the pass's lease every third of its time while a step runs (one step may
    fetch for longer than the lease lasts: many re-checks, each up to the fetch deadline),
    so that no other worker takes over a pass that is still alive."""

    def __init__(self, runner: HotlineRunner, token: str) -> None:
        self.runner = runner
        self.token = token
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="amparo-hotline-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        runner = self.runner
        while not self._stop.wait(runner.lease_seconds / 3):
            try:
                renewed = runner.ctx.leases.renew(
                    LEASE_NAME, self.token, runner.lease_seconds, runner.ctx.clock()
                )
            except Exception:
                log.exception("renewing the hotline lease failed; trying again")
                continue
            if not renewed:
                self.lost.set()
                return


__all__ = ["LEASE_NAME", "HotlineRunner", "PassReport"]
