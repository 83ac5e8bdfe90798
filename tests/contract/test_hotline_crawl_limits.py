"""What one report may cost the verification crawl, against a loopback site of benign
synthetic images: a page in a charset no page is written in is read as UTF-8, a report whose
crawl keeps failing cannot hold the queue (each failure is a try, with backoff, until it is
closed), markup is read off the event loop within its bounds, and the unknown media one report
may preserve is capped (``hotline_preserve_max_bytes``)."""

from __future__ import annotations

import io
import random
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image, ImageDraw

import amparo.hotline.crawl as crawl_module
from amparo.app import Amparo
from amparo.banks.model import BankInfo
from amparo.config import Settings
from amparo.fetch import Fetcher, FetchLimits
from amparo.hotline.crawl import Crawler, CrawlLimits
from amparo.hotline.extract import Extracted
from amparo.hotline.service import HotlineService
from amparo.url_policy import parse_allowlist
from clocks import ManualClock
from hotline_support import crawl_audits, submit_report


def picture(seed: int, side: int) -> bytes:
    """A distinct benign synthetic PNG: a solid colour with a few rectangles."""
    rng = random.Random(seed)
    image = Image.new("RGB", (side, side), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.randrange(side), rng.randrange(side)
        x1, y1 = rng.randrange(x0, side + 1), rng.randrange(y0, side + 1)
        draw.rectangle((x0, y0, x1, y1), fill=tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


KNOWN = picture(101, 128)
UNKNOWN = [picture(200 + i, 96 + 8 * i) for i in range(3)]


class Site:
    """A threaded HTTP server on 127.0.0.1: ``routes`` maps a path to (content type, body)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.hits: Counter[str] = Counter()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.hits[self.path] += 1
                route = site.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", route[0])
                self.send_header("Content-Length", str(len(route[1])))
                self.end_headers()
                self.wfile.write(route[1])

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    with Site() as s:
        s.routes["/known.png"] = ("image/png", KNOWN)
        for i, data in enumerate(UNKNOWN):
            s.routes[f"/u{i}.png"] = ("image/png", data)
        yield s


def crawler(**limits: Any) -> Crawler:
    hosts, networks = parse_allowlist("127.0.0.1")
    fetcher = Fetcher(FetchLimits(allow_hosts=hosts, allow_networks=networks))
    return Crawler(fetcher, CrawlLimits(**limits))


# -- the crawler ------------------------------------------------------------------------------


@pytest.mark.parametrize("charset", ["idna", "punycode", "undefined", "base64", "zlib", "nope"])
def test_a_page_in_a_charset_that_is_no_page_encoding_is_read_as_utf8(
    site: Site, charset: str
) -> None:
    # charset=idna made decoding raise UnicodeError: the crawl failed and the report jammed.
    site.routes["/p"] = (f"text/html; charset={charset}", b'<img src="/u0.png"> caf\xc3\xa9')
    result = crawler().crawl_bytes(site.url("/p"))
    assert result.page_error is None and result.errors == []
    assert [m.result for m in result.media] == [UNKNOWN[0]]


def test_markup_is_read_on_a_worker_thread(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    # Reading a page takes up to its time budget of CPU: off the event loop, the other
    # fetches' deadlines still hold meanwhile.
    threads: list[int] = []
    real = crawl_module.extract_media

    def spy(*args: Any, **kwargs: Any) -> Extracted:
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(crawl_module, "extract_media", spy)
    site.routes["/p"] = ("text/html", b'<img src="/u0.png"><a href="/q">q</a>')
    site.routes["/q"] = ("text/html", b'<img src="/u1.png">')
    result = crawler(depth=1).crawl_bytes(site.url("/p"))
    assert len(result.media) == 2 and result.pages == 2
    assert len(threads) == 2 and threading.get_ident() not in threads


def test_a_hostile_page_is_read_up_to_its_bounds_and_says_why(site: Site) -> None:
    unclosed = b'<img src="/u0.png"><img ' + b"a=b " * (4 * 1024 * 1024 // 4)
    site.routes["/unclosed"] = ("text/html", unclosed)
    site.routes["/lt"] = ("text/html", b"<" * (4 * 1024 * 1024) + b'<img src="/u1.png">')
    result = crawler().crawl_bytes(site.url("/unclosed"))
    assert [m.result for m in result.media] == [UNKNOWN[0]]
    (error,) = result.errors
    assert "malformed markup (an unclosed tag or comment over 262,144 characters)" in error
    result = crawler().crawl_bytes(site.url("/lt"))
    assert [m.result for m in result.media] == [UNKNOWN[1]] and result.errors == []


def test_the_lease_covers_every_page_read_to_its_budget() -> None:
    limits = CrawlLimits(max_pages=10, max_media=50, concurrency=4, parse_seconds=2.0)
    assert limits.worst_seconds(30.0) == (10 + 13) * 30.0 + 10 * 2.0


# -- the verifier -----------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def amparo(settings: Settings) -> Iterator[Amparo]:
    with Amparo(replace(settings, url_allowlist="127.0.0.1")) as core:
        core.banks.create(BankInfo(name="known"))
        core.banks.add_media("known", KNOWN, category="A1")
        yield core


def hotline(amparo: Amparo, clock: ManualClock, **changes: Any) -> HotlineService:
    settings = replace(amparo.settings, **changes)
    return HotlineService(
        settings, amparo.store, checks=amparo.checks, evidence=amparo.evidence, clock=clock
    )


def test_a_report_in_an_idna_page_is_crawled(
    amparo: Amparo, site: Site, clock: ManualClock
) -> None:
    site.routes["/p"] = ("text/html; charset=idna", b'<img src="/u0.png"><img src="/known.png">')
    service = hotline(amparo, clock)
    report_id = submit_report(service, site.url("/p"), clock)
    assert service.verifier.crawl_due() == 1
    done = service.records.get(report_id)
    assert done.status == "confirmed" and done.crawl_error is None
    assert sorted(i.status for i in service.records.items(report_id)) == ["unknown", "verified"]


def test_a_report_whose_crawl_keeps_failing_cannot_hold_the_queue(
    amparo: Amparo, site: Site, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.routes["/ok"] = ("text/html", b'<img src="/u0.png">')
    service = hotline(amparo, clock, hotline_crawl_attempts=3)
    verifier = service.verifier
    jammed = [submit_report(service, site.url(f"/jam{i}"), clock) for i in range(3)]
    healthy = submit_report(service, site.url("/ok"), clock)
    real = verifier.crawler.crawl

    def crawl(url: str, handle: Any) -> Any:
        if "/jam" in url:  # what a charset=idna page did before: not a page error, a crash
            raise UnicodeError("label empty or too long")
        return real(url, handle)

    monkeypatch.setattr(verifier.crawler, "crawl", crawl)
    # The oldest two fail: each failure is a try, so they step aside...
    with pytest.raises(UnicodeError):
        verifier.crawl_due(limit=2)
    for report_id in jammed[:2]:
        failed = service.records.get(report_id)
        assert failed.status == "new" and failed.crawl_attempts == 1
        assert failed.crawl_error == "crawl failed: UnicodeError: label empty or too long"
        assert (failed.next_crawl_at - clock()).total_seconds() == 600
    # ... and the next pass, at the same time, reaches the ones behind them.
    with pytest.raises(UnicodeError):
        verifier.crawl_due(limit=2)
    assert service.records.get(healthy).status == "assessment"
    assert verifier.crawl_due(limit=2) == 0  # nothing due: the failed ones wait
    clock.advance(600)
    with pytest.raises(UnicodeError):
        verifier.crawl_due()
    clock.advance(1200)
    with pytest.raises(UnicodeError):
        verifier.crawl_due()
    for report_id in jammed:
        closed = service.records.get(report_id)
        assert closed.status == "closed" and closed.crawl_attempts == 3
        assert closed.next_crawl_at is None
        assert (closed.crawl_error or "").startswith("failed after 3 tries: crawl failed: ")
        audits = crawl_audits(amparo, report_id)
        assert [a["status"] for a in audits] == ["new", "new", "closed"]
        assert {a["error_code"] for a in audits} == {"crawl_failed"}
    clock.advance(10**6)
    assert verifier.crawl_due() == 0  # closed: never picked up again


def test_unknown_media_past_the_report_budget_is_recorded_not_preserved(
    amparo: Amparo, site: Site, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = sorted(len(data) for data in UNKNOWN)
    assert sizes[0] + sizes[1] > sizes[2]  # room for exactly one, whichever comes first
    site.routes["/p"] = (
        "text/html",
        b"".join(f'<img src="/u{i}.png">'.encode() for i in range(3)) + b'<img src="/known.png">',
    )
    preserved: list[int] = []
    real = amparo.evidence.preserve

    def counting(data: Any, **kwargs: Any) -> Any:
        preserved.append(len(data))
        return real(data, **kwargs)

    monkeypatch.setattr(amparo.evidence, "preserve", counting)
    service = hotline(amparo, clock, hotline_preserve_max_bytes=sizes[2])
    report_id = submit_report(service, site.url("/p"), clock)
    done = service.verifier.crawl(report_id)
    assert done.status == "confirmed"
    items = service.records.items(report_id)
    unknown = [i for i in items if i.status == "unknown"]
    assert len(unknown) == 3 and all(i.pdq and i.sha256 for i in unknown)  # all hashed
    kept = [i for i in unknown if i.evidence_id is not None]
    assert len(kept) == 1 and preserved == [kept[0].size]
    for item in unknown:
        if item.evidence_id is None:
            assert "hotline_preserve_max_bytes" in (item.note or "")
            assert "budget" in (item.note or "")
    (audit,) = crawl_audits(amparo, report_id)
    assert audit["unknown"] == 3 and audit["unknown_not_preserved"] == 2
    assert audit["verified"] == 1
    # A re-crawl preserves again what the report holds (its retention renewed) at no cost,
    # and nothing more.
    service.verifier.crawl(report_id)
    assert preserved == [kept[0].size] * 2


def test_a_budget_of_nothing_preserves_nothing(
    amparo: Amparo, site: Site, clock: ManualClock
) -> None:
    site.routes["/p"] = ("text/html", b'<img src="/u0.png"><img src="/u1.png">')
    service = hotline(amparo, clock, hotline_preserve_max_bytes=0)
    waiting = service.verifier.crawl(submit_report(service, site.url("/p"), clock))
    assert waiting.status == "assessment"
    items = service.records.items(waiting.id)
    assert [(i.status, i.evidence_id) for i in items] == [("unknown", None)] * 2
