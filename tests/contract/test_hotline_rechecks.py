"""Removal re-checks against a site on loopback serving a benign synthetic picture: removal is
seen (404/410, a host that no longer resolves, other content), errors are inconclusive, a
re-encoded copy still counts as the content, and a removed URL serving it again reopens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from amparo.app import Amparo
from amparo.config import Settings
from amparo.errors import ConflictError, FetchError
from amparo.hotline.model import HotlineItem, UrlReport
from amparo.hotline.service import HotlineService
from amparo.url_policy import system_resolver
from clocks import ManualClock
from hotline_support import Route, Site, hotline_on, noticed_report, picture

ORIGINAL = picture(1)
REENCODED = picture(1, "JPEG", 70)
OTHER = picture(2)


class ModeSite(Site):
    """Serves every path as ``mode`` says: ``ok``, ``reencoded``, ``other`` or a status
    code."""

    def __init__(self) -> None:
        super().__init__(routes=self._as_mode)
        self.mode: str = "ok"

    def _as_mode(self, path: str) -> Route:
        body = {"ok": ORIGINAL, "reencoded": REENCODED, "other": OTHER}.get(self.mode)
        return Route(status=int(self.mode)) if body is None else Route(body, "image/png")


def resolver(host: str, port: int) -> list[str]:
    if host.startswith("flaky."):
        raise FetchError(
            f"cannot resolve host {host!r}: [Errno -3] Temporary failure in name resolution"
        )
    if host.endswith(".invalid"):
        raise FetchError(f"cannot resolve host {host!r}: Name or service not known")
    return system_resolver(host, port)


@dataclass
class World:
    service: HotlineService
    clock: ManualClock
    site: ModeSite
    amparo: Amparo

    def notified_report(self, media_url: str | None = None) -> tuple[UrlReport, HotlineItem]:
        """A report whose known item was noticed now; its first re-check due in 6 h."""
        return noticed_report(
            self.service.records,
            url=self.site.url("/page"),
            host="127.0.0.1",
            media_url=media_url or self.site.url("/media/a.png"),
            content=ORIGINAL,
            now=self.clock.now,
        )

    def audits(self, action: str) -> list[Any]:
        return [e for e in self.amparo.audit.entries() if e.action == action]


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> Iterator[World]:
    from dataclasses import replace

    settings = replace(settings, url_allowlist="127.0.0.1", hotline_watch_days=30)
    with ModeSite() as site, Amparo(settings) as core:
        clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
        yield World(hotline_on(core, clock, resolver), clock, site, core)


def test_still_up_then_inconclusive_then_removed(world: World) -> None:
    report, item = world.notified_report()
    rechecker, records, clock = world.service.rechecker, world.service.records, world.clock
    assert rechecker.recheck_due() == 0  # not due yet
    clock.advance(6 * 3600)
    assert rechecker.recheck_due() == 1
    report = records.get(report.id)
    assert report.status == "notified" and report.recheck_attempts == 1
    assert report.next_recheck_at == clock.now + timedelta(hours=12)
    assert records.item(item.id).online and records.item(item.id).last_seen == clock.now

    world.site.mode = "500"
    clock.advance(12 * 3600)
    assert rechecker.recheck_due() == 1
    report = records.get(report.id)
    assert report.status == "notified" and records.item(item.id).online
    assert report.next_recheck_at == clock.now + timedelta(hours=24)
    inconclusive = world.audits("hotline.recheck")[0]
    assert inconclusive.details["inconclusive"] == 1 and inconclusive.details["gone"] == 0

    world.site.mode = "404"
    clock.advance(24 * 3600)
    assert rechecker.recheck_due() == 1
    report = records.get(report.id)
    assert report.status == "removed" and report.removed_at == clock.now
    assert report.time_to_removal_seconds == 42 * 3600
    assert report.next_recheck_at == clock.now + timedelta(days=7)
    gone = records.item(item.id)
    assert not gone.online and gone.removed_at == clock.now
    removed = world.audits("hotline.removed")
    assert len(removed) == 1 and removed[0].details["time_to_removal_seconds"] == 42 * 3600
    assert len(world.audits("hotline.recheck")) == 3


def test_the_last_interval_repeats(world: World) -> None:
    report, _ = world.notified_report()
    for _ in range(8):
        report = world.service.rechecker.recheck(report.id)
    assert report.recheck_attempts == 8
    assert report.next_recheck_at == world.clock.now + timedelta(hours=72)


@pytest.mark.parametrize("mode", ["410", "other"])
def test_gone_and_other_content_mean_removed(world: World, mode: str) -> None:
    report, _ = world.notified_report()
    world.site.mode = mode
    assert world.service.rechecker.recheck(report.id).status == "removed"


def test_a_reencoded_copy_is_still_the_content(world: World) -> None:
    report, item = world.notified_report()
    world.site.mode = "reencoded"
    assert world.service.rechecker.probe(item).reason == "the same picture (PDQ)"
    assert world.service.rechecker.recheck(report.id).status == "notified"


def test_a_host_that_no_longer_resolves_is_removal(world: World) -> None:
    report, _ = world.notified_report("http://media.gone.invalid/a.png")
    world.site.mode = "404"  # the reported page no longer shows it either
    assert world.service.rechecker.recheck(report.id).status == "removed"


def test_a_temporary_dns_failure_is_inconclusive(world: World) -> None:
    report, item = world.notified_report("http://flaky.example/a.png")
    assert world.service.rechecker.probe(item).outcome == "inconclusive"
    assert world.service.rechecker.recheck(report.id).status == "notified"


def test_reports_with_nothing_confirmed_are_not_rechecked(world: World) -> None:
    records = world.service.records
    report, _ = records.submit(
        "http://x.example/", "http://x.example/", "x.example", at=world.clock.now, channel="cli"
    )
    with pytest.raises(ConflictError):
        world.service.rechecker.recheck(report.id)


def test_reappearance_reopens_the_report(world: World) -> None:
    report, item = world.notified_report()
    rechecker, records, clock = world.service.rechecker, world.service.records, world.clock
    world.site.mode = "404"
    clock.advance(6 * 3600)
    report = rechecker.recheck(report.id)
    assert report.status == "removed"
    # Watched weekly: still gone, nothing changes but the next re-check.
    clock.advance(7 * 86400)
    assert rechecker.recheck_due() == 1
    report = records.get(report.id)
    assert report.status == "removed" and report.next_recheck_at == clock.now + timedelta(days=7)
    world.site.mode = "ok"
    clock.advance(7 * 86400)
    assert rechecker.recheck_due() == 1
    report = records.get(report.id)
    assert report.status == "confirmed" and report.removed_at is None
    assert report.next_notice_at == clock.now and report.reappearances == 1
    back = records.item(item.id)
    assert back.online and back.removed_at is None and back.reappearances == 1
    reopen = world.audits("hotline.reopen")
    assert len(reopen) == 1 and reopen[0].target == f"url-report:{report.id}"
    assert rechecker.recheck_due() == 0  # confirmed: the notifier's turn


def test_watching_ends_after_the_watch_days(world: World) -> None:
    report, _ = world.notified_report()
    world.site.mode = "404"
    report = world.service.rechecker.recheck(report.id)
    removed_at = report.removed_at
    assert removed_at is not None
    world.clock.advance(28 * 86400)
    report = world.service.rechecker.recheck(report.id)
    assert report.next_recheck_at == removed_at + timedelta(days=30)
    world.clock.advance(2 * 86400)
    report = world.service.rechecker.recheck(report.id)
    assert report.status == "removed" and report.next_recheck_at is None
