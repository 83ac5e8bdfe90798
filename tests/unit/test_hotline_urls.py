"""Reported URLs in normal form: every spelling of one page gives one key, and what is not an
http(s) address of a host (other schemes, credentials, control characters, disguised
addresses, absurd lengths) is refused with a reason the report page can translate."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amparo.errors import InputError, UrlRefusedError
from amparo.hotline.urls import MAX_URL_LENGTH, normalise
from amparo.i18n import translator


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        ("example.com", "http://example.com/"),
        ("  https://example.com/a \n", "https://example.com/a"),
        ("HTTP://Example.COM:80/./a/../b", "http://example.com/b"),
        ("https://example.com:443/", "https://example.com/"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("http://example.com:443/x", "http://example.com:443/x"),
        ("http://example.com./a#section-2", "http://example.com/a"),
        ("example.com:8080/x?y=1", "http://example.com:8080/x?y=1"),
        ("//example.com/x", "http://example.com/x"),
        ("http://example.com/a/b/../../../../c/.", "http://example.com/c/"),
        ("http://example.com/%2e%2E/a", "http://example.com/a"),
        ("http://example.com/%7e%61%2f", "http://example.com/~a%2F"),
        ("http://example.com/%zz", "http://example.com/%25zz"),
        ("https://ejemplo.mx/niño y más", "https://ejemplo.mx/ni%C3%B1o%20y%20m%C3%A1s"),
        ("https://Bücher.example/", "https://xn--bcher-kva.example/"),
        ("https://ÉXAMPLE。mx/", "https://xn--xample-9ua.mx/"),
        ("http://xn--bcher-kva.example/", "http://xn--bcher-kva.example/"),
        ("http://example.com/?", "http://example.com/"),
        (
            "https://example.com/p?utm_source=x&id=7&UTM_Campaign=y&fbclid=1&gclid=2&b=",
            "https://example.com/p?id=7&b=",
        ),
        ("https://example.com/p?a=1&&a=2", "https://example.com/p?a=1&a=2"),
        (
            "https://example.com/p?next=http://other.example/",
            "https://example.com/p?next=http://other.example/",
        ),
        (
            "https://example.com/r/http://other.example/",
            "https://example.com/r/http://other.example/",
        ),
        ("http://[2001:DB8::1]:8080/", "http://[2001:db8::1]:8080/"),
        ("http://2130706433/", "http://127.0.0.1/"),
        ("http://0x7f.1/", "http://127.0.0.1/"),
        ("http://0177.0.0.1/", "http://127.0.0.1/"),
        ("http://192.168.1/", "http://192.168.0.1/"),
    ],
)
def test_spellings_of_one_page_normalise_alike(given_url: str, expected: str) -> None:
    normal = normalise(given_url)
    assert normal.url == expected
    assert normal.key == hashlib.sha256(expected.encode()).hexdigest()
    assert normalise(normal.url) == normal  # the normal form is a fixed point


def test_host_and_address() -> None:
    assert normalise("https://Sub.Example.com/x").host == "sub.example.com"
    v6 = normalise("http://[2001:db8::1]/")
    assert v6.host == "2001:db8::1" and str(v6.address) == "2001:db8::1"
    assert str(normalise("http://2130706433/").address) == "127.0.0.1"
    assert normalise("https://example.com/").address is None


def test_one_key_per_page() -> None:
    keys = {
        normalise(u).key
        for u in (
            "example.com/a?utm_medium=mail",
            "HTTP://EXAMPLE.COM:80/a",
            "http://example.com/./a#top",
            "http://example.com/b/../a",
        )
    }
    assert len(keys) == 1
    assert normalise("https://example.com/a").key not in keys  # another scheme, another page


@pytest.mark.parametrize(
    ("hostile", "reason"),
    [
        ("", "no URL"),
        ("   ", "no URL"),
        ("javascript:alert(1)", "only http and https"),
        ("JAVASCRIPT://%0aalert(1)", "only http and https"),
        ("data:text/html,<script>", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("ftp://example.com/x", "only http and https"),
        ("mailto:abuse@example.com", "only http and https"),
        ("http://user:pass@example.com/", "user name or password"),
        ("http://example.com@evil.example/", "user name or password"),
        ("http://exa\x00mple.com/", "control characters"),
        ("http://example.com/a\nb", "control characters"),
        ("http://example.com/\x1b[31m", "control characters"),
        ("http://example.com/\x85x", "control characters"),
        ("http://ex%00ample.com/", "not a valid domain name"),
        ("http://exa mple.com/", "not a valid domain name"),
        ("http://<script>.example/", "not a valid domain name"),
        ("http://" + "a" * 64 + ".example/", "not a valid domain name"),
        ("http://1.2.3.256/", "not a valid address"),
        ("http://1.2.3.4.5/", "not a valid address"),
        ("http://example.123/", "not a valid address"),
        ("http://[::1/", "does not look like a web address"),
        ("http://[zz]/", "does not look like a web address"),
        ("http:///path", "has no host"),
        ("http://example.com:0/", "port is not valid"),
        ("http://example.com:99999/", "port is not valid"),
        ("http://example.com:port/", "port is not valid"),
        ("localhost", "does not look like a web address"),
        ("just some words", "does not look like a web address"),
        ("user@example.com", "does not look like a web address"),
        ("https://example.com/" + "a" * MAX_URL_LENGTH, "too long"),
        ("https://example.com/" + "ñ" * 1000, "too long"),  # long only once encoded
    ],
)
def test_hostile_input_is_refused_with_a_reason(hostile: str, reason: str) -> None:
    with pytest.raises(UrlRefusedError, match=reason) as caught:
        normalise(hostile)
    error = caught.value
    assert isinstance(error, InputError) and error.http_status == 400
    assert error.hint
    # The page shows the reason in the reporter's language; it never echoes the input.
    for lang in ("es", "pt_BR"):
        _ = translator(lang, "report")
        assert _(error.message) != error.message
        assert _(error.hint) != error.hint
    if len(hostile) > 8:
        assert hostile.strip() not in str(error)


def test_not_text_is_refused() -> None:
    with pytest.raises(UrlRefusedError):
        normalise(b"http://example.com/")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_normalises_or_is_refused_cleanly(text: str) -> None:
    try:
        normal = normalise(text)
    except UrlRefusedError:
        return
    assert normal.url.startswith(("http://", "https://"))
    assert normal.url.isascii() and normal.url.isprintable() and " " not in normal.url
    assert len(normal.url) <= MAX_URL_LENGTH
    assert "#" not in normal.url and "@" not in normal.url.split("/")[2]
    assert normalise(normal.url) == normal


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,2}\.[a-z]{2,6}", fullmatch=True),
    st.lists(st.text(min_size=1, max_size=12), max_size=4),
)
def test_generated_urls_keep_their_host_and_are_fixed_points(
    scheme: str, host: str, segments: list[str]
) -> None:
    url = f"{scheme}://{host}/" + "/".join(segments)
    try:
        normal = normalise(url)
    except UrlRefusedError:
        assert any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in url) or url.strip() != url
        return
    assert normal.host == host
    assert normalise(normal.url) == normal
