"""Removal re-checks against a hostile host (a loopback site serving benign synthetic
pictures): a refused redirect is not removal, a renamed or re-versioned file is still the
content (the reported page is re-crawled and the item follows it), an HTML page at the media
URL is removal only when the page no longer shows the content, and a per-report lease keeps
two re-checks of one report from counting a reappearance twice."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from amparo.app import Amparo
from amparo.config import Settings
from amparo.errors import ConflictError, FetchError
from amparo.hotline.model import HotlineItem, UrlReport
from amparo.hotline.rechecks import lease_name
from amparo.hotline.service import HotlineService
from clocks import ManualClock
from hotline_support import noticed_report, picture

ORIGINAL = picture(1)
REENCODED = picture(1, "JPEG", 70)
OTHER = picture(2)


class HostileSite:
    """A loopback HTTP server answering each path (query included) from ``routes``:
    ``(status, headers, body)``; anything else is a 404."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.hits.append(self.path)
                status, headers, body = site.routes.get(self.path, (404, {}, b""))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = "site.test") -> str:
        return f"http://{host}:{self.port}{path}"

    def image(self, path: str, body: bytes = ORIGINAL) -> None:
        self.routes[path] = (200, {"Content-Type": "image/png"}, body)

    def html(self, path: str, html: str) -> None:
        self.routes[path] = (200, {"Content-Type": "text/html; charset=utf-8"}, html.encode())

    def page_showing(self, *paths: str) -> None:
        """The reported page ``/page`` showing these media."""
        self.html("/page", "".join(f'<p><img src="{p}" alt=""></p>' for p in paths))

    def redirect(self, path: str, to: str) -> None:
        self.routes[path] = (302, {"Location": to}, b"")

    def status(self, path: str, status: int) -> None:
        self.routes[path] = (status, {}, b"")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def resolver(host: str, port: int) -> list[str]:
    """``site.test`` is the loopback site (allow-listed by name); ``sink.test`` resolves to
    an address the policy refuses (a sinkholed domain); ``*.invalid`` does not resolve."""
    if host == "site.test":
        return ["127.0.0.1"]
    if host == "sink.test":
        return ["10.0.0.1"]
    raise FetchError(f"cannot resolve host {host!r}: Name or service not known")


@dataclass
class World:
    service: HotlineService
    clock: ManualClock
    site: HostileSite
    amparo: Amparo

    def notified_report(self, media_url: str | None = None) -> tuple[UrlReport, HotlineItem]:
        """A report of ``/page`` whose known item (``/a.png``) was noticed now."""
        return noticed_report(
            self.service.records,
            url=self.site.url("/page"),
            host="site.test",
            media_url=media_url or self.site.url("/a.png"),
            content=ORIGINAL,
            now=self.clock.now,
        )

    def audits(self, action: str) -> list[Any]:
        return [e for e in self.amparo.audit.entries() if e.action == action]

    def reasons(self) -> dict[str, str]:
        return dict(self.audits("hotline.recheck")[0].details["reasons"])


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    # Only the host name is allowed: the literal 127.0.0.1 (a redirect target) is refused.
    settings = replace(settings, url_allowlist="site.test", hotline_watch_days=30)
    site = HostileSite()
    try:
        with Amparo(settings) as core:
            clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
            service = HotlineService(
                settings,
                core.store,
                checks=core.checks,
                evidence=core.evidence,
                clock=clock,
                resolver=resolver,
            )
            yield World(service, clock, site, core)
    finally:
        site.close()


# -- (a) a refused redirect hop is inconclusive; a sinkholed own host name is removal --------


@pytest.mark.parametrize("target", ["loopback", "metadata"])
def test_a_redirect_to_a_refused_address_is_not_removal(world: World, target: str) -> None:
    site = world.site
    to = {
        "loopback": f"http://127.0.0.1:{site.port}/a.png",
        "metadata": "http://169.254.169.254/latest/meta-data/",
    }[target]
    site.redirect("/a.png", to)
    site.image("/a.png?real")  # what everyone else is served
    site.page_showing("/a.png")
    report, item = world.notified_report()
    probe = world.service.rechecker.probe(item)
    assert probe.outcome == "inconclusive" and "redirect was refused" in probe.reason
    report = world.service.rechecker.recheck(report.id)
    assert report.status == "notified" and report.removed_at is None
    assert world.service.records.item(item.id).online
    recheck = world.audits("hotline.recheck")[0].details
    assert recheck["gone"] == 0 and recheck["inconclusive"] == 1


def test_a_sinkholed_media_host_with_the_page_gone_is_removal(world: World) -> None:
    site = world.site
    site.page_showing("/other.png")
    site.image("/other.png", OTHER)
    report, item = world.notified_report(site.url("/a.png", host="sink.test"))
    probe = world.service.rechecker.probe(item)
    assert probe.outcome == "gone" and "sinkholed" in probe.reason
    report = world.service.rechecker.recheck(report.id)
    assert report.status == "removed" and report.removed_at == world.clock.now
    assert "no longer shows it" in world.reasons()[str(item.id)]


def test_a_sinkholed_page_host_is_removal(world: World) -> None:
    records, now = world.service.records, world.clock.now
    url = world.site.url("/page", host="sink.test")
    report, _ = records.submit(url, url, "sink.test", at=now, channel="cli")
    item, _ = records.add_item(
        report.id,
        media_url=world.site.url("/a.png", host="sink.test"),
        sha256=hashlib.sha256(ORIGINAL).hexdigest(),
        status="verified",
        at=now,
        assessment="baseline",
    )
    records.update(report.id, at=now, status="notified", first_notice_at=now)
    assert world.service.rechecker.recheck(report.id).status == "removed"
    assert "the reported page" in world.reasons()[str(item.id)]


# -- (c) the reported page is re-crawled before an item is called gone ----------------------


@pytest.mark.parametrize(
    ("new_path", "body", "how"),
    [
        ("/renamed.png", ORIGINAL, "SHA-256"),
        ("/a.png?v=2", ORIGINAL, "SHA-256"),
        ("/b.jpg", REENCODED, "PDQ"),
    ],
)
def test_a_renamed_file_still_on_the_page_is_still_up(
    world: World, new_path: str, body: bytes, how: str
) -> None:
    site = world.site
    site.status("/a.png", 404)
    site.image(new_path, body)
    site.page_showing(new_path)
    report, item = world.notified_report()
    rechecker, records = world.service.rechecker, world.service.records
    assert rechecker.probe(item).outcome == "gone"  # the old URL alone would say so
    report = rechecker.recheck(report.id)
    assert report.status == "notified" and report.removed_at is None
    moved = records.item(item.id)
    assert moved.online and moved.removed_at is None and moved.last_seen == world.clock.now
    assert moved.media_url == site.url(new_path)
    details = world.audits("hotline.recheck")[0].details
    assert details["gone"] == 0 and details["moved"] == {str(item.id): site.url(new_path)}
    assert how in details["reasons"][str(item.id)]
    # The next re-check fetches the new URL and finds the content there directly.
    world.clock.advance(12 * 3600)
    site.routes["/page"] = (500, {}, b"")  # not asked: the item's own URL answers
    assert rechecker.recheck(report.id).status == "notified"
    assert (
        world.audits("hotline.recheck")[0].details["reasons"][str(item.id)].startswith("the same")
    )


def test_a_page_that_is_gone_confirms_removal_with_its_time(world: World) -> None:
    site = world.site
    site.status("/a.png", 410)
    site.status("/page", 404)
    report, item = world.notified_report()
    world.clock.advance(6 * 3600)
    assert world.service.rechecker.recheck_due() == 1
    report = world.service.records.get(report.id)
    assert report.status == "removed" and report.removed_at == world.clock.now
    assert report.time_to_removal_seconds == 6 * 3600
    gone = world.service.records.item(item.id)
    assert not gone.online and gone.removed_at == world.clock.now
    assert world.audits("hotline.removed")[0].details["time_to_removal_seconds"] == 6 * 3600
    assert "HTTP 404" in world.reasons()[str(item.id)]


@pytest.mark.parametrize("trouble", ["page 503", "medium 503", "medium refused redirect"])
def test_a_page_that_cannot_be_read_makes_it_inconclusive(world: World, trouble: str) -> None:
    site = world.site
    site.status("/a.png", 404)
    site.page_showing("/x.png")
    if trouble == "page 503":
        site.status("/page", 503)
    elif trouble == "medium 503":
        site.status("/x.png", 503)
    else:
        site.redirect("/x.png", f"http://127.0.0.1:{site.port}/a.png?real")
    report, item = world.notified_report()
    report = world.service.rechecker.recheck(report.id)
    assert report.status == "notified" and world.service.records.item(item.id).online
    details = world.audits("hotline.recheck")[0].details
    assert details["gone"] == 0 and details["inconclusive"] == 1


def test_content_back_elsewhere_on_the_page_reopens_once(world: World) -> None:
    site = world.site
    site.status("/a.png", 404)
    site.page_showing("/logo.png")
    site.image("/logo.png", OTHER)
    report, item = world.notified_report()
    rechecker, records = world.service.rechecker, world.service.records
    assert rechecker.recheck(report.id).status == "removed"
    site.image("/gallery/a-copy.png")
    site.page_showing("/logo.png", "/gallery/a-copy.png")
    world.clock.advance(7 * 86400)
    assert rechecker.recheck_due() == 1
    report = records.get(report.id)
    assert report.status == "confirmed" and report.reappearances == 1
    back = records.item(item.id)
    assert back.online and back.reappearances == 1
    assert back.media_url == site.url("/gallery/a-copy.png")
    assert world.audits("hotline.reopen")[0].details["urls"] == [back.media_url]
    assert rechecker.recheck_due() == 0


# -- (b) a 200 that is not the content is removal only when the page agrees ------------------


@pytest.mark.parametrize("served", ["html", "other picture"])
def test_other_content_at_the_url_is_not_removal_while_the_page_shows_it(
    world: World, served: str
) -> None:
    site = world.site
    if served == "html":
        site.html("/a.png", "<html><body>nothing here</body></html>")
    else:
        site.image("/a.png", OTHER)
    site.image("/a2.png")
    site.page_showing("/a2.png")
    report, item = world.notified_report()
    assert world.service.rechecker.recheck(report.id).status == "notified"
    assert world.service.records.item(item.id).media_url == site.url("/a2.png")
    # Once the page no longer shows it either, it is gone.
    site.status("/a2.png", 404)
    site.page_showing("/a.png")
    world.clock.advance(6 * 3600)
    report = world.service.rechecker.recheck(report.id)
    assert report.status == "removed" and report.removed_at == world.clock.now


def test_other_content_at_the_url_and_not_on_the_page_is_removal(world: World) -> None:
    site = world.site
    site.html("/a.png", "<html><body>removed</body></html>")
    site.html("/page", "<html><body>this content was removed</body></html>")
    report, _ = world.notified_report()
    assert world.service.rechecker.recheck(report.id).status == "removed"


# -- (d) one re-check of a report at a time ------------------------------------------------


def test_a_recheck_under_way_elsewhere_is_skipped_or_refused(world: World) -> None:
    site = world.site
    site.image("/a.png")
    site.page_showing("/a.png")
    report, _ = world.notified_report()
    rechecker, leases = world.service.rechecker, world.service.context.leases
    world.clock.advance(6 * 3600)  # due now
    token = leases.acquire(lease_name(report.id), "cli-elsewhere", 600)
    assert token is not None
    assert rechecker.recheck_due() == 0
    with pytest.raises(ConflictError) as refused:
        rechecker.recheck(report.id)
    assert refused.value.hint and "try again" in refused.value.hint
    assert world.service.records.get(report.id).recheck_attempts == 0
    assert world.audits("hotline.recheck") == []
    leases.release(lease_name(report.id), token)
    assert rechecker.recheck_due() == 1
    assert world.service.records.get(report.id).recheck_attempts == 1
    # Its lease was let go: a re-check on demand takes it again.
    assert rechecker.recheck(report.id).recheck_attempts == 2
    assert leases.acquire(lease_name(report.id), "someone", 60) is not None
