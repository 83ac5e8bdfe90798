"""Serve's exchange loop (amparo.api.background) and the per-collaboration metrics collector,
over the fake ExchangeService: steps run in order in a thread, a failing step is logged and
the loop goes on, shutdown waits for a running tick; metrics read at scrape time, cached."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from amparo.api.background import ExchangeLoop, default_steps
from amparo.api.metrics import ExchangeCollector, Metrics, last_fetch_failed
from amparo.config import load_settings
from amparo.exchanges.model import Collaboration, CollaborationStatus
from exchange_fakes import NOW, FakeAmparo, FakeExchangeService


def _loop(fake: FakeExchangeService, tmp_path: Path) -> tuple[ExchangeLoop, FakeAmparo]:
    settings = load_settings(env={}, overrides={"home": tmp_path, "exchange_poll_seconds": 7})
    amparo = FakeAmparo(settings, fake)
    return ExchangeLoop.for_app(amparo, settings), amparo  # type: ignore[arg-type]


def test_a_tick_fetches_what_is_due_then_sends_opinions(tmp_path: Path) -> None:
    fake = FakeExchangeService()
    fake.add(Collaboration(name="mx", exchange="url", bank="b"), actor="t")
    fake.due = ["mx"]
    loop, _ = _loop(fake, tmp_path)
    assert loop.interval == 7
    report = loop.tick()
    assert [c for c, _ in fake.calls if c != "add"] == ["fetch_due", "fetch", "deliver_opinions"]
    assert [r.collaboration for r in report.fetches] == ["mx"] and not report.errors


def test_a_failing_step_is_logged_and_the_others_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeExchangeService()
    fake.due_raises = [RuntimeError("database went away")]
    loop, _ = _loop(fake, tmp_path)
    failed: list[str] = []
    loop.on_error = lambda step, _exc: failed.append(step)
    loop.steps.append(("retro", lambda: "caught up"))  # the hook the lead adds retro with
    report = loop.tick()
    assert failed == ["fetch"] and isinstance(report.errors["fetch"], RuntimeError)
    assert report.results["opinions"] == 0 and report.results["retro"] == "caught up"
    assert "exchange step 'fetch' failed" in caplog.text
    assert not loop.tick().errors  # the next tick works


def test_steps_find_a_service_replaced_after_the_loop_was_built(tmp_path: Path) -> None:
    first, second = FakeExchangeService(), FakeExchangeService()
    settings = load_settings(env={}, overrides={"home": tmp_path})
    amparo = FakeAmparo(settings, first)
    steps = default_steps(amparo)  # type: ignore[arg-type]
    amparo.exchanges = second
    for _name, step in steps:
        step()
    assert not first.calls and [c for c, _ in second.calls] == ["fetch_due", "deliver_opinions"]


def test_run_ticks_in_a_thread_sleeps_and_survives(tmp_path: Path) -> None:
    fake = FakeExchangeService()
    fake.due_raises = [RuntimeError("boom"), ValueError("again")]
    loop, _ = _loop(fake, tmp_path)
    threads: list[int] = []
    loop.steps.append(("where", lambda: threads.append(threading.get_ident())))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 4:
            raise asyncio.CancelledError

    async def main() -> int:
        with pytest.raises(asyncio.CancelledError):
            await loop.run(sleep=sleep)
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert slept == [7, 7, 7, 7] and loop.ticks == 4
    assert [c for c, _ in fake.calls].count("fetch_due") == 4  # two failed, the loop went on
    assert threads and loop_thread not in threads  # never on the event loop


def test_shutdown_waits_for_a_running_tick(tmp_path: Path) -> None:
    fake = FakeExchangeService()
    loop, _ = _loop(fake, tmp_path)
    started, finished = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.3)
        finished.set()

    loop.steps = [("slow", slow)]

    async def main() -> None:
        task = asyncio.create_task(loop.run())
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert finished.is_set()  # the store is not closed under a running step


# -- metrics ------------------------------------------------------------------------------


def _status(name: str, **fields: object) -> CollaborationStatus:
    return CollaborationStatus(
        collaboration=Collaboration(name=name, exchange="ncmec", bank="ncmec"), **fields
    )  # type: ignore[arg-type]


def test_collector_reads_at_scrape_time_with_a_short_cache() -> None:
    reads: list[int] = []
    now = [100.0]
    statuses = [_status("mx", last_fetch_at=NOW, lag_seconds=5.0, entries_added=7)]

    def list_status() -> list[CollaborationStatus]:
        reads.append(1)
        return statuses

    collector = ExchangeCollector(list_status, cache_seconds=5, clock=lambda: now[0])
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    assert not reads  # registering describes without reading the database
    text = generate_latest(registry).decode()
    assert 'amparo_exchange_entries_added_total{collaboration="mx"} 7.0' in text
    assert 'amparo_exchange_lag_seconds{collaboration="mx"} 5.0' in text
    generate_latest(registry)
    assert len(reads) == 1  # cached
    now[0] += 6
    statuses.append(_status("never"))
    text = generate_latest(registry).decode()
    assert len(reads) == 2
    assert 'amparo_exchange_records{collaboration="never"} 0.0' in text
    assert 'lag_seconds{collaboration="never"}' not in text  # never fetched: absent, not 0


def test_collector_reports_a_failed_read(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> list[CollaborationStatus]:
        raise RuntimeError("database down")

    registry = CollectorRegistry()
    registry.register(ExchangeCollector(broken))
    text = generate_latest(registry).decode()
    assert "amparo_exchange_status_error 1.0" in text
    assert "could not read the collaborations" in caplog.text


def test_multiprocess_render_includes_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics = Metrics()
    assert metrics.multiprocess
    metrics.add_collector(ExchangeCollector(lambda: [_status("mx", quarantined=2)]))
    text = metrics.render().decode()
    assert 'amparo_exchange_quarantined_records{collaboration="mx"} 2.0' in text


def test_last_fetch_failed() -> None:
    later = NOW + timedelta(minutes=1)
    assert not last_fetch_failed(_status("a"))
    assert last_fetch_failed(_status("a", last_error="503"))
    assert last_fetch_failed(
        _status("a", last_error="503", last_fetch_at=NOW, last_attempt_at=later)
    )
    assert not last_fetch_failed(
        _status("a", last_error="503", last_fetch_at=later, last_attempt_at=NOW)
    )
