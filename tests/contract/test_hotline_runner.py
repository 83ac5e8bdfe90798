"""The hotline scheduler's pass: one runner at a time under the database lease, every step run
even when another fails, confirmed reports attributed one by one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from amparo.app import Amparo
from amparo.config import Settings
from amparo.errors import FetchError
from amparo.hotline.attribution import Attributor
from amparo.hotline.context import HotlineContext
from amparo.hotline.runner import LEASE_NAME, HotlineRunner, PassReport
from clocks import ManualClock
from hotline_support import hotline_on


def resolver(host: str, port: int) -> list[str]:
    if host == "broken.example":
        raise RuntimeError("a resolver bug")  # not a DNS failure: attributing fails
    if host.endswith(".invalid"):
        raise FetchError(f"cannot resolve host {host!r}")
    return ["198.51.100.7"]


@dataclass
class Step:
    """A stand-in for a part's ``*_due`` method: answers ``result`` or raises it."""

    result: int | BaseException = 0
    calls: list[datetime] = field(default_factory=list)
    during: Callable[[], Any] | None = None

    def __call__(self, now: datetime | None = None, **_kw: Any) -> int:
        assert now is not None
        self.calls.append(now)
        if self.during is not None:
            self.during()
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


class FakeVerifier:
    def __init__(self, attributor: Attributor, crawl: Step) -> None:
        self.attributor = attributor
        self.crawl_due = crawl


class FakeNotifier:
    def __init__(self, notify: Step) -> None:
        self.notify_due = notify


class FakeRechecker:
    def __init__(self, recheck: Step) -> None:
        self.recheck_due = recheck


@dataclass
class World:
    ctx: HotlineContext
    clock: ManualClock
    amparo: Amparo

    def runner(
        self,
        crawl: Step | None = None,
        notify: Step | None = None,
        recheck: Step | None = None,
    ) -> HotlineRunner:
        return HotlineRunner(
            self.ctx,
            FakeVerifier(Attributor(self.ctx), crawl or Step()),  # type: ignore[arg-type]
            FakeNotifier(notify or Step()),  # type: ignore[arg-type]
            FakeRechecker(recheck or Step()),  # type: ignore[arg-type]
        )


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    with Amparo(settings) as core:
        clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
        yield World(hotline_on(core, clock, resolver).context, clock, core)


def test_the_lease_keeps_two_runners_apart(world: World) -> None:
    inner: list[PassReport] = []
    second = world.runner(crawl=Step(5))
    # The second runner tries its pass while the first is in the middle of one.
    first = world.runner(crawl=Step(1, during=lambda: inner.append(second.run_once())))
    done = first.run_once()
    assert done.ran and done.crawled == 1 and done.errors == 0
    assert inner == [PassReport()] and not inner[0].ran
    assert world.ctx.leases.get(LEASE_NAME) is None  # released after the pass
    after = second.run_once()
    assert after.ran and after.crawled == 5


def test_a_held_lease_expires(world: World) -> None:
    assert world.ctx.leases.acquire(LEASE_NAME, "dead-worker", 60) is not None
    runner = world.runner(crawl=Step(1))
    assert not runner.run_once().ran
    world.clock.advance(61)
    assert runner.run_once().crawled == 1


def test_a_long_step_keeps_its_lease(world: World) -> None:
    """A step longer than the lease: the heartbeat renews it, so no other runner starts."""
    seen: list[bool] = []

    def long_step() -> None:
        held = world.ctx.leases.get(LEASE_NAME)
        assert held is not None
        first_expiry = held.expires_at
        world.clock.advance(0.2)  # the lease is 0.3 s long: it would expire 0.1 s from now
        renewed = threading.Event()
        for _ in range(500):  # the heartbeat renews every 0.1 s (wall time)
            held = world.ctx.leases.get(LEASE_NAME)
            if held is not None and held.expires_at > first_expiry:
                renewed.set()
                break
            renewed.wait(0.01)
        seen.append(renewed.is_set())
        world.clock.advance(0.2)  # past the first expiry; the renewed lease still holds
        seen.append(world.runner(crawl=Step(9)).run_once().ran)

    runner = world.runner(crawl=Step(1, during=long_step))
    runner.lease_seconds = 0.3
    assert runner.run_once().crawled == 1
    assert seen == [True, False]


def test_a_failing_step_does_not_stop_the_others(world: World) -> None:
    crawl = Step(RuntimeError("crawl exploded"))
    notify = Step(NotImplementedError())
    recheck = Step(2)
    report = world.runner(crawl, notify, recheck).run_once()
    assert report.ran and report.rechecked == 2 and report.errors == 2
    assert set(report.failed) == {"crawl", "notify"}
    assert crawl.calls == notify.calls == recheck.calls == [world.clock.now]


def test_confirmed_reports_are_attributed_one_failure_aside(world: World) -> None:
    records, now = world.ctx.records, world.clock.now
    ids = {}
    for host, status in [
        ("hosting.example", "confirmed"),
        ("broken.example", "confirmed"),
        ("waiting.example", "assessment"),
        ("gone.invalid", "confirmed"),
        ("new.example", "new"),
    ]:
        url = f"http://{host}/"
        report, _ = records.submit(url, url, host, at=now, channel="cli")
        records.update(report.id, at=now, status=status)
        ids[host] = report.id
    report = world.runner().run_once()
    assert report.attributed == 3 and report.errors == 1 and "attribute" in report.failed
    assert records.get(ids["hosting.example"]).attribution is not None
    assert records.get(ids["waiting.example"]).attribution is not None
    unresolved = records.get(ids["gone.invalid"]).attribution
    assert unresolved is not None and unresolved.error
    assert records.get(ids["broken.example"]).attribution is None
    assert records.get(ids["new.example"]).attribution is None
    # Attributed reports are not attributed again; the failed one is retried.
    again = world.runner().run_once()
    assert again.attributed == 0 and again.errors == 1


def test_run_forever_stops_when_told(world: World) -> None:
    stop = threading.Event()
    passes: list[datetime] = []

    def count() -> None:
        passes.append(world.clock.now)
        if len(passes) == 3:
            stop.set()

    runner = world.runner(crawl=Step(0, during=count))
    runner.run_forever(stop, interval=0.01)
    assert len(passes) == 3
