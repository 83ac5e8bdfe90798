"""Hotline intake on SQLite and PostgreSQL: a reported URL becomes one report however many
times it is reported while open; a closed report lets the URL be reported afresh; each report
is in the audit log (never the reporter's contact); private addresses written as IPs are
refused unless allow-listed; and the public page's per-client limit, on a clock the test
moves."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace

import pytest

from amparo.app import Amparo
from amparo.clock import utc_now
from amparo.config import Settings
from amparo.errors import ConfigError, InputError, RateLimitedError, UrlRefusedError
from amparo.hotline.limits import ClientLimiter, Rate, client_key
from amparo.i18n import translator
from clocks import ManualMonotonic


@pytest.fixture
def amparo(settings: Settings) -> Iterator[Amparo]:
    with Amparo(replace(settings, url_allowlist="10.9.0.0/16,intranet.example")) as core:
        yield core


def test_a_second_report_of_an_open_url_joins_it(amparo: Amparo) -> None:
    intake = amparo.hotline.intake
    first, joined = intake.report(
        "Example.com/page?utm_source=mail", channel="web", actor="public", language="es-MX"
    )
    assert not joined
    assert (first.url, first.host, first.status) == (
        "http://example.com/page",
        "example.com",
        "new",
    )
    assert first.language == "es" and first.submissions == 1
    again, joined = intake.report(
        "http://EXAMPLE.com:80/page#top",
        channel="api",
        actor="key:partner",
        reporter="partner",
        language="pt-BR",
        contact=" analyst@partner.example ",
        comment="second",
    )
    assert joined and again.id == first.id and again.submissions == 2
    assert again.language == "es"  # the first submission's
    subs = amparo.hotline.records.submissions(first.id)
    assert [(s.channel, s.reporter, s.language) for s in subs] == [
        ("web", None, "es"),
        ("api", "partner", "pt_BR"),
    ]
    assert subs[1].contact == "analyst@partner.example" and subs[1].comment == "second"
    other, joined = intake.report("https://example.com/page", channel="web", actor="public")
    assert not joined and other.id != first.id  # another scheme is another page


def test_a_closed_report_lets_the_url_be_reported_again(amparo: Amparo) -> None:
    intake = amparo.hotline.intake
    first, _ = intake.report("https://example.org/x", channel="web", actor="public")
    amparo.hotline.records.update(first.id, status="closed", at=utc_now())
    second, joined = intake.report("https://example.org/x", channel="web", actor="public")
    assert not joined and second.id != first.id and second.status == "new"
    third, joined = intake.report("https://example.org/x", channel="web", actor="public")
    assert joined and third.id == second.id
    assert amparo.hotline.records.get(first.id).status == "closed"


def test_each_report_is_audited_without_the_contact(amparo: Amparo) -> None:
    intake = amparo.hotline.intake
    report, _ = intake.report(
        "https://example.net/a", channel="web", actor="public", contact="+52 55 1234 5678"
    )
    intake.report(
        "https://example.net/a", channel="api", actor="key:p", reporter="p", contact="a@b.example"
    )
    entries = amparo.audit.entries(action="hotline.report")[::-1]  # oldest first
    assert [(e.actor, e.target) for e in entries] == [
        ("public", f"url-report:{report.id}"),
        ("key:p", f"url-report:{report.id}"),
    ]
    assert entries[0].details == {"url": "https://example.net/a", "joined": False, "channel": "web"}
    assert entries[1].details["joined"] is True
    for entry in entries:
        assert "5678" not in str(entry.details) and "a@b.example" not in str(entry.details)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://2130706433/",
        "http://10.0.0.8/",
        "http://192.168.1.20:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:192.168.0.1]/",
        "http://0.0.0.0/",
        "http://localhost./",
        "http://app.localhost/",
    ],
)
def test_private_addresses_are_refused_at_intake(amparo: Amparo, url: str) -> None:
    with pytest.raises(UrlRefusedError, match="private or local network"):
        amparo.hotline.intake.report(url, channel="web", actor="public")
    assert amparo.hotline.records.count() == 0


def test_allow_listed_and_public_addresses_pass(amparo: Amparo) -> None:
    intake = amparo.hotline.intake
    for url in ("http://10.9.3.4/a", "http://intranet.example/b", "http://93.184.215.14/c"):
        report, _ = intake.report(url, channel="cli", actor="local")
        assert report.url == url
    # A name is never resolved at intake: the crawl's address policy checks where it leads.
    report, _ = intake.report("http://resolves-anywhere.example/", channel="web", actor="public")
    assert report.host == "resolves-anywhere.example"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"channel": "fax"}, "unknown submission channel"),
        ({"contact": "x" * 321}, "contact is too long"),
        ({"contact": "call me maybe"}, "not an email address or a phone number"),
        ({"contact": "a\x00@b.example"}, "not an email address or a phone number"),
        ({"contact": "12"}, "not an email address or a phone number"),
        ({"comment": "x" * 2001}, "comment is too long"),
        ({"comment": "nul \x00 inside"}, "control characters"),
        ({"url": "javascript:alert(1)"}, "only http and https"),
    ],
)
def test_bad_fields_are_refused(amparo: Amparo, fields: dict[str, str], reason: str) -> None:
    given: dict[str, str] = {"url": "https://example.com/", "channel": "web", **fields}
    url = given.pop("url")
    with pytest.raises(InputError, match=reason) as caught:
        amparo.hotline.intake.report(url, actor="public", **given)  # type: ignore[arg-type]
    assert amparo.hotline.records.count() == 0
    if given["channel"] == "web":  # what the report page shows, in the reporter's language
        for lang in ("es", "pt_BR"):
            _ = translator(lang, "report")
            assert _(caught.value.message) != caught.value.message
            assert caught.value.hint and _(caught.value.hint) != caught.value.hint


def test_optional_fields_are_trimmed_or_dropped(amparo: Amparo) -> None:
    intake = amparo.hotline.intake
    report, _ = intake.report(
        "https://example.com/", channel="web", actor="public", language="xx",
        contact="   ", comment="  line one\nline two  ",
    )  # fmt: skip
    (sub,) = amparo.hotline.records.submissions(report.id)
    assert sub.language == "en" and sub.contact is None and sub.comment == "line one\nline two"
    report, _ = intake.report(
        "https://example.com/2", channel="web", actor="public", contact="(55) 1234-5678"
    )
    assert amparo.hotline.records.submissions(report.id)[0].contact == "(55) 1234-5678"


# -- the public page's limit per client -------------------------------------------------------


def test_limiter_allows_count_per_window_and_says_when_to_retry() -> None:
    clock = ManualMonotonic()
    limiter = ClientLimiter(Rate(3, 600), clock=clock)
    for _ in range(3):
        limiter.hit("198.51.100.7")
        clock.advance(10)
    with pytest.raises(RateLimitedError) as caught:
        limiter.hit("198.51.100.7")
    assert caught.value.retry_after == 600 - 30
    limiter.hit("198.51.100.8")  # another client has its own window
    clock.advance(600 - 30)  # the first hit leaves the window
    limiter.hit("198.51.100.7")
    with pytest.raises(RateLimitedError):
        limiter.hit("198.51.100.7")
    clock.advance(20)  # and the second one
    limiter.hit("198.51.100.7")


def test_refused_hits_do_not_extend_the_wait() -> None:
    clock = ManualMonotonic()
    limiter = ClientLimiter(Rate(1, 60), clock=clock)
    limiter.hit("a")
    for _ in range(50):
        clock.advance(1)
        with pytest.raises(RateLimitedError):
            limiter.hit("a")
    clock.advance(10)
    limiter.hit("a")


def test_limiter_memory_is_bounded_and_keeps_no_address() -> None:
    clock = ManualMonotonic()
    limiter = ClientLimiter(Rate(2, 60), clock=clock, max_clients=100)
    for n in range(1000):
        # Once the table is full of live windows, new clients share one overflow window
        # (never evicting a live one): some are refused, and memory stays bounded.
        with contextlib.suppress(RateLimitedError):
            limiter.hit(f"203.0.113.{n % 250}" if n < 250 else f"2001:db8:{n:x}::1")
        clock.advance(0.01)
    assert len(limiter) <= 100
    assert not any(isinstance(k, str) for k in limiter._hits)  # salted digests only
    clock.advance(61)
    limiter.hit("192.0.2.1")  # expired keys are dropped first
    assert len(limiter) == 1


def test_an_ipv6_client_counts_by_its_network() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9")
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    limiter = ClientLimiter(Rate(1, 60), clock=ManualMonotonic())
    limiter.hit("2001:db8:1:2::1")
    with pytest.raises(RateLimitedError):
        limiter.hit("2001:db8:1:2::2")


@pytest.mark.parametrize("spec", ["", "5", "0/60", "5/0", "x/60", "5/-1", "5/inf", "5/nan"])
def test_a_malformed_rate_is_a_config_error(spec: str) -> None:
    with pytest.raises(ConfigError, match="report_rate_limit"):
        Rate.parse(spec)
    assert Rate.parse(" 5/600 ") == Rate(5, 600.0)
