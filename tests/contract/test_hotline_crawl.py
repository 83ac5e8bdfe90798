"""The verification crawl against a loopback web site of benign synthetic images: known media
verified, unknown media preserved for an analyst, and every hostile answer (a private address,
100,000 links, a redirect loop, a 2 GB "image", garbage markup) bounded and reported."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from dataclasses import replace

import pytest

from amparo.app import Amparo
from amparo.banks.model import BankInfo
from amparo.config import Settings
from amparo.errors import UrlRefusedError
from amparo.fetch import Fetcher, FetchLimits
from amparo.hotline.crawl import Crawler, CrawlLimits
from amparo.hotline.service import HotlineService
from amparo.store.leases import LeaseRepository
from amparo.url_policy import parse_allowlist
from clocks import ManualClock
from hotline_support import Route, Site, crawl_audits, image_bytes, submit_report

KNOWN = image_bytes(1, size=128)
KNOWN_JPEG = image_bytes(2, size=160, fmt="JPEG")
UNKNOWN = image_bytes(3, size=96)
OTHER = image_bytes(4, size=200)


def loopback_limits(**changes: object) -> FetchLimits:
    hosts, networks = parse_allowlist("127.0.0.1")
    return replace(FetchLimits(allow_hosts=hosts, allow_networks=networks), **changes)  # type: ignore[arg-type]


def crawler(**limits: object) -> Crawler:
    fetch = {
        k: limits.pop(k) for k in ("max_bytes", "max_redirects", "timeout_seconds") if k in limits
    }
    return Crawler(Fetcher(loopback_limits(**fetch)), CrawlLimits(**limits))  # type: ignore[arg-type]


@pytest.fixture
def site() -> Iterator[Site]:
    with Site() as s:
        s.page(
            "/",
            """<!doctype html><html><head>
            <meta property="og:image" content="/og.png">
            <title>gallery</title></head><body>
            <img src="/known.png" srcset="/known.png 1x, /srcset.jpg 2x">
            <picture><source srcset="/picture.png"><img src="/unknown.png"></picture>
            <video poster="/poster.png"></video>
            <a href="/moved.png">moved</a> <a href="/missing.png">broken</a>
            <a href="/page2">more</a> <a href="https://other.invalid/page">elsewhere</a>
            </body></html>""",
        )
        s.page("/page2", '<img src="/deep.png"><a href="/page3">deeper</a><img src="/known.png">')
        s.page("/page3", '<img src="/deepest.png">')
        s.add("/known.png", KNOWN, "image/png")
        s.add("/srcset.jpg", KNOWN_JPEG, "image/jpeg")
        s.add("/picture.png", OTHER, "image/png")
        s.add("/unknown.png", UNKNOWN, "image/png")
        s.add("/og.png", image_bytes(5), "image/png")
        s.add("/poster.png", image_bytes(6), "image/png")
        s.add("/real.png", image_bytes(7), "image/png")
        s.redirect("/moved.png", "/real.png")
        s.add("/deep.png", image_bytes(8), "image/png")
        s.add("/deepest.png", image_bytes(9), "image/png")
        yield s


# -- the crawler (no storage) ---------------------------------------------------------------


def test_crawl_finds_every_variant_follows_same_host_pages_and_records_errors(site: Site) -> None:
    result = crawler(depth=1).crawl_bytes(site.url("/"))
    assert result.page_error is None and result.pages == 2
    by_url = {m.url.removeprefix(site.base): m for m in result.media}
    assert list(by_url) == [
        "/og.png",
        "/known.png",
        "/srcset.jpg",
        "/picture.png",
        "/unknown.png",
        "/poster.png",
        "/moved.png",
        "/missing.png",
        "/deep.png",
    ]
    assert by_url["/known.png"].result == KNOWN
    assert by_url["/srcset.jpg"].result == KNOWN_JPEG
    assert by_url["/moved.png"].result == image_bytes(7)  # the redirect followed
    assert by_url["/missing.png"].result is None
    assert "404" in (by_url["/missing.png"].error or "")
    assert by_url["/missing.png"].error_code == "fetch_failed"
    assert site.hits["/page3"] == 0  # depth 1: not two links away
    assert site.hits["/known.png"] == 1  # linked from two pages, fetched once


def test_depth_and_page_limits_bound_what_is_followed(site: Site) -> None:
    assert crawler(depth=0).crawl_bytes(site.url("/")).pages == 1
    deep = crawler(depth=2).crawl_bytes(site.url("/"))
    assert deep.pages == 3 and any(m.url.endswith("/deepest.png") for m in deep.media)
    capped = crawler(depth=2, max_pages=2).crawl_bytes(site.url("/"))
    assert capped.pages == 2 and site.hits["/page3"] == 1
    few = crawler(depth=0, max_media=3).crawl_bytes(site.url("/"))
    assert len(few.media) == 3 and few.media_over_cap == 5


def test_a_reported_image_is_its_own_medium(site: Site) -> None:
    result = crawler().crawl_bytes(site.url("/unknown.png"))
    assert result.is_medium and [m.result for m in result.media] == [UNKNOWN]


def test_a_private_address_is_refused_without_an_allowlist(site: Site) -> None:
    strict = Crawler(Fetcher(FetchLimits()), CrawlLimits())
    for url in (site.url("/"), "http://10.1.2.3/", "http://[::1]:9/", "http://localhost/"):
        result = strict.crawl_bytes(url)
        assert isinstance(result.page_error, UrlRefusedError), url
        assert result.pages == 0 and result.media == []
    assert site.hits["/"] == 0


def test_a_page_of_100000_links_is_read_up_to_the_cap(site: Site) -> None:
    links = "".join(f'<a href="/p{i}.png">{i}</a>' for i in range(100_000))
    site.page("/many", f"<html><body>{links}</body></html>")
    result = crawler(max_links=5000, max_media=20).crawl_bytes(site.url("/many"))
    assert result.truncated
    assert any("more than 5,000 links" in e for e in result.errors)
    assert len(result.media) == 20 and result.media_over_cap == 5000 - 20
    assert sum(site.hits[f"/p{i}.png"] for i in range(100_000)) == 20


def test_a_redirect_loop_ends_at_the_redirect_limit(site: Site) -> None:
    site.redirect("/loop-a", "/loop-b")
    site.redirect("/loop-b", "/loop-a")
    site.page("/looping", '<img src="/loop-a">')
    result = crawler(max_redirects=3).crawl_bytes(site.url("/looping"))
    (medium,) = result.media
    assert medium.error is not None and "more than 3 redirects" in medium.error
    assert site.hits["/loop-a"] + site.hits["/loop-b"] == 4
    page = crawler(max_redirects=3).crawl_bytes(site.url("/loop-a"))
    assert page.page_error is not None and "redirects" in page.page_error.message


def test_a_2gb_image_is_refused_at_the_cap_in_bounded_memory(site: Site) -> None:
    cap = 1024 * 1024
    site.routes["/declared.jpg"] = Route(b"\xff\xd8\xff", "image/jpeg", declared_length=2 * 10**9)
    site.routes["/endless.jpg"] = Route(b"\xff\xd8\xff\xe0" * 1024, "image/jpeg", endless=True)
    site.page("/huge", '<img src="/declared.jpg"><img src="/endless.jpg">')
    tracemalloc.start()
    try:
        result = crawler(max_bytes=cap, page_max_bytes=cap).crawl_bytes(site.url("/huge"))
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [m.error_code for m in result.media] == ["media_too_large", "media_too_large"]
    assert peak < 16 * cap  # the body buffer up to the cap, not 2 GB
    # The endless one was read up to the cap, then hung up on.
    assert site.sent["/endless.jpg"] < 64 * cap
    reported = crawler(max_bytes=cap, page_max_bytes=cap).crawl_bytes(site.url("/endless.jpg"))
    assert reported.page_error is not None and reported.page_error.code == "media_too_large"


def test_malformed_pages_are_read_as_far_as_they_go(site: Site) -> None:
    site.add("/garbage", b"<img src=/known.png>" + bytes(range(256)) * 200, "text/html")
    site.page("/unclosed", "<html><body><div><p><img src='/unknown.png'><a href='/page2'")
    site.add("/binary", b"\x00" * 5000, "application/octet-stream")
    garbage = crawler().crawl_bytes(site.url("/garbage"))
    assert garbage.page_error is None and [m.result for m in garbage.media] == [KNOWN]
    unclosed = crawler().crawl_bytes(site.url("/unclosed"))
    assert [m.result for m in unclosed.media] == [UNKNOWN]
    binary = crawler().crawl_bytes(site.url("/binary"))
    assert binary.media == [] and "neither a page nor media" in binary.errors[0]


def test_a_page_over_its_cap_is_refused_when_followed(site: Site) -> None:
    site.page("/big", "<p>" + "x" * 200_000 + '<img src="/known.png">')
    site.page("/start", '<a href="/big">big</a><img src="/unknown.png">')
    result = crawler(page_max_bytes=100_000).crawl_bytes(site.url("/start"))
    assert result.pages == 1
    assert any(e.startswith(site.url("/big")) and "100,000" in e for e in result.errors)


# -- the verifier (storage, hashing, matching, evidence) -------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def amparo(settings: Settings) -> Iterator[Amparo]:
    with Amparo(replace(settings, url_allowlist="127.0.0.1")) as core:
        core.banks.create(BankInfo(name="known"))
        core.banks.add_media("known", KNOWN, category="A1")
        core.banks.add_media("known", KNOWN_JPEG, category="A1")
        yield core


def hotline(amparo: Amparo, clock: ManualClock, **changes: object) -> HotlineService:
    settings = replace(amparo.settings, **changes)  # type: ignore[arg-type]
    return HotlineService(
        settings, amparo.store, checks=amparo.checks, evidence=amparo.evidence, clock=clock
    )


def test_known_media_is_verified_unknown_preserved_and_the_report_confirmed(
    amparo: Amparo, site: Site, clock: ManualClock
) -> None:
    site.add("/not-an-image.png", b"<html>sorry</html>", "image/png")
    site.page(
        "/", site.routes["/"].body.decode().replace("</body>", '<img src="/not-an-image.png">')
    )
    service = hotline(amparo, clock)
    report_id = submit_report(service, site.url("/"), clock)
    assert service.verifier.crawl_due() == 1
    done = service.records.get(report_id)
    assert done.status == "confirmed" and done.crawled_at == clock()
    assert done.crawl_error is None and done.next_crawl_at is None
    items = {i.media_url.removeprefix(site.base): i for i in service.records.items(report_id)}
    verified = {u for u, i in items.items() if i.status == "verified"}
    assert verified == {"/known.png", "/srcset.jpg"}
    known = items["/known.png"]
    assert known.assessment == "baseline" and known.matches[0]["bank"] == "known"
    assert known.evidence_id is None and known.pdq is not None
    unknown = {u: i for u, i in items.items() if i.status == "unknown"}
    assert "/unknown.png" in unknown and "/not-an-image.png" not in items
    assert "/missing.png" not in items
    evidence = amparo.evidence.get(unknown["/unknown.png"].evidence_id or 0)
    assert evidence.sha256 == unknown["/unknown.png"].sha256
    assert site.url("/missing.png") in done.media_urls
    (audit,) = crawl_audits(amparo, report_id)
    assert audit["pages"] == 2 and audit["verified"] == 2
    assert audit["unknown"] == len(unknown) and audit["skipped_not_media"] == 1
    assert audit["errors"] == 1 and audit["truncated"] is False
    # Crawled: not due again.
    assert service.verifier.crawl_due() == 0


def test_unknown_media_only_waits_for_assessment_and_no_media_closes(
    amparo: Amparo, site: Site, clock: ManualClock
) -> None:
    site.page("/unknown-only", '<img src="/unknown.png">')
    site.page("/empty", "<p>nothing here</p>")
    service = hotline(amparo, clock)
    waiting = service.verifier.crawl(submit_report(service, site.url("/unknown-only"), clock))
    assert waiting.status == "assessment"
    assert [i.status for i in service.records.items(waiting.id)] == ["unknown"]
    empty = service.verifier.crawl(submit_report(service, site.url("/empty"), clock))
    assert empty.status == "closed" and empty.crawl_error is None
    assert service.records.items(empty.id) == []


def test_an_unreachable_page_is_retried_with_backoff_then_closed(
    amparo: Amparo, site: Site, clock: ManualClock
) -> None:
    site.routes["/down"] = Route(b"oops", status=503)
    service = hotline(amparo, clock, hotline_crawl_attempts=3)
    report_id = submit_report(service, site.url("/down"), clock)
    assert service.verifier.crawl_due() == 1
    first = service.records.get(report_id)
    assert first.status == "unreachable" and first.crawl_attempts == 1
    assert "503" in (first.crawl_error or "")
    assert (first.next_crawl_at - clock()).total_seconds() == 600
    assert service.verifier.crawl_due() == 0  # not due yet
    clock.advance(600)
    assert service.verifier.crawl_due() == 1
    second = service.records.get(report_id)
    assert second.crawl_attempts == 2 and (second.next_crawl_at - clock()).total_seconds() == 1200
    clock.advance(1200)
    assert service.verifier.crawl_due() == 1
    closed = service.records.get(report_id)
    assert closed.status == "closed" and closed.next_crawl_at is None
    assert (closed.crawl_error or "").startswith("unreachable after 3 tries")
    assert [a["status"] for a in crawl_audits(amparo, report_id)] == [
        "unreachable",
        "unreachable",
        "closed",
    ]


def test_a_private_address_closes_the_report_at_once(
    amparo: Amparo, site: Site, clock: ManualClock
) -> None:
    service = hotline(amparo, clock, url_allowlist="")
    closed = service.verifier.crawl(submit_report(service, site.url("/"), clock))
    assert closed.status == "closed" and closed.next_crawl_at is None
    assert (closed.crawl_error or "").startswith("refused: ")
    assert "not a public address" in (closed.crawl_error or "")
    assert site.hits["/"] == 0
    (audit,) = crawl_audits(amparo, closed.id)
    assert audit["error_code"] == "url_refused"


def test_a_report_leased_by_another_process_is_left_alone(
    amparo: Amparo, site: Site, clock: ManualClock
) -> None:
    service = hotline(amparo, clock)
    report_id = submit_report(service, site.url("/"), clock)
    leases = LeaseRepository(amparo.store.db, clock=clock)
    token = leases.acquire(f"hotline:crawl:{report_id}", "other-host:1", 600)
    assert token is not None
    assert service.verifier.crawl_due() == 0
    assert service.records.get(report_id).status == "new" and site.hits["/"] == 0
    leases.release(f"hotline:crawl:{report_id}", token)
    assert service.verifier.crawl_due() == 1
    assert leases.get(f"hotline:crawl:{report_id}") is None  # let go after the crawl


def test_content_removed_before_at_the_same_host_counts_as_a_reappearance(
    amparo: Amparo, site: Site, clock: ManualClock
) -> None:
    site.page("/old", '<img src="/known.png">')
    site.page("/new", '<img src="/copy-of-known.png">')
    site.add("/copy-of-known.png", KNOWN, "image/png")
    service = hotline(amparo, clock)
    old = service.verifier.crawl(submit_report(service, site.url("/old"), clock))
    (item,) = service.records.items(old.id)
    service.records.update_item(item.id, removed_at=clock(), online=False)
    clock.advance(3600)
    new = service.verifier.crawl(submit_report(service, site.url("/new"), clock))
    assert new.status == "confirmed" and new.reappearances == 1
    (audit,) = crawl_audits(amparo, new.id)
    assert audit["reappeared"] == [{"sha256": item.sha256, "removed_in_reports": [old.id]}]
