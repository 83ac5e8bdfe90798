"""Hostile pages cost the extractor bounded work: a tag or comment that never closes, a tag of
400,000 attributes, megabytes of ``<``, markup that is merely slow to read (a time budget on an
injected clock), and a Content-Type charset that no page is written in. Bounds are asserted on
what was read, clock readings and traced memory, never on wall time."""

from __future__ import annotations

import codecs
import tracemalloc

import pytest

from amparo.hotline.extract import (
    _FEED_CHARS,
    MAX_ATTRIBUTES,
    MAX_PENDING_CHARS,
    Extracted,
    decode_page,
    extract_media,
    page_charset,
)
from amparo.hotline.verify import PreserveBudget

BASE = "http://site.test/dir/page.html"
MB = 5 * 1024 * 1024
BEFORE = '<img src="/before.png">'
# Reading stops after the feed that pushed the unfinished part past the cap.
MOST_READ = MAX_PENDING_CHARS + 2 * _FEED_CHARS


class TickingClock:
    """A monotonic clock that moves ``step`` seconds each time it is read, counting reads."""

    def __init__(self, step: float) -> None:
        self.now = 100.0
        self.step = step
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += self.step
        return self.now


def extract(html: str, **options: object) -> tuple[Extracted, int]:
    """Extract ``html``; also the peak memory traced while doing it."""
    tracemalloc.start()
    try:
        found = extract_media(html, BASE, max_links=5000, **options)  # type: ignore[arg-type]
        return found, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# -- unfinished constructs --------------------------------------------------------------------

HOSTILE = {
    # A 5 MB start tag that never closes: the stdlib parser re-scanned it from its `<` on
    # every 64 KiB feed (61 s of CPU and +1 GB before the cap).
    "unclosed tag": BEFORE + "<img " + "a=b " * (MB // 4),
    # One tag of 400,000 attributes (12.5 s before).
    "400k attributes": BEFORE + "<img " + " ".join(f'a{i}="x"' for i in range(400_000)) + ">",
    "unclosed quoted value": BEFORE + '<img src="' + "a" * MB,
    "unclosed comment": BEFORE + "<!--" + "a" * MB,
    "unclosed declaration": BEFORE + "<!" + "a" * MB,
    "unclosed processing instruction": BEFORE + "<?" + "a" * MB,
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_an_unfinished_construct_stops_reading_at_the_cap(name: str) -> None:
    html = HOSTILE[name]
    found, peak = extract(html)
    assert found.malformed and "unclosed tag or comment" in (found.stopped or "")
    assert found.read <= MOST_READ < len(html)
    assert found.media == ("http://site.test/before.png",)
    assert peak < 128 * 1024 * 1024  # the unclosed 5 MB tag took over 1 GB


def test_a_smaller_cap_reads_less() -> None:
    found, _peak = extract(HOSTILE["unclosed tag"], max_pending=64 * 1024)
    assert found.malformed and found.read <= 64 * 1024 + 2 * _FEED_CHARS


def test_an_inline_image_under_the_cap_is_read_past() -> None:
    inline = '<img src="data:image/png;base64,' + "A" * 150_000 + '">'
    found, _peak = extract(inline + '<img src="/after.png">')
    assert not found.malformed
    assert found.media == ("http://site.test/after.png",)


# -- stray `<` --------------------------------------------------------------------------------


def test_megabytes_of_lt_are_read_as_text_at_once() -> None:
    # The parser handed each `<` that opens nothing over on its own: 5 MB of them took 5 s.
    found, _peak = extract("<" * MB + '<img src="/after.png">')
    assert not found.malformed
    assert found.read < 100  # the run is one `%3C`
    assert found.media == ("http://site.test/after.png",)


def test_stray_lt_changes_no_tag_and_reads_as_a_browser_requests_it() -> None:
    # A run of `<` that opens nothing reads as the `%3C` a browser requests in its place; a
    # `<` before a letter is left as it is (the parser reads it as a tag where one can be).
    html = (
        "<p>1 < 2 <<< 3</p><img alt='a<b' src='/x<1.png'><a href=/z<<.jpg>z</a>"
        "<img src='/w<y.png'><script>if (a<b) {}</script><img src=/last.png><"
    )
    found, _peak = extract(html)
    assert found.media == (
        "http://site.test/x%3C1.png",
        "http://site.test/z%3C.jpg",
        "http://site.test/w<y.png",
        "http://site.test/last.png",
    )


# -- attributes -------------------------------------------------------------------------------


def test_only_the_first_attributes_of_a_tag_count() -> None:
    padding = " ".join(f"data-a{i}=x" for i in range(MAX_ATTRIBUTES))
    late = f"<img {padding} src=/late.png>"
    early = f"<img src=/early.png {padding} {padding}>"
    found, _peak = extract(late + early)
    assert found.media == ("http://site.test/early.png",)
    found, _peak = extract(late, max_attributes=MAX_ATTRIBUTES + 1)
    assert found.media == ("http://site.test/late.png",)


# -- the time budget --------------------------------------------------------------------------


def test_reading_stops_when_its_time_budget_is_spent() -> None:
    # Markup that is merely slow (5 MB of tags: seconds of CPU) stops at the budget, read on an
    # injected clock between feeds; what came before is kept.
    html = BEFORE + "<b>" * (MB // 3)
    clock = TickingClock(step=0.5)
    found = extract_media(html, BASE, max_links=5000, time_budget=2.0, clock=clock)
    assert found.malformed and found.stopped == "reading took over 2 s"
    assert found.media == ("http://site.test/before.png",)
    # Read once at the start (100.5: the deadline 102.5), then after each feed until past it:
    # 5 feeds of 64 KiB of the 5 MB.
    assert clock.reads == 6 and found.read == 5 * _FEED_CHARS


def test_a_page_within_its_budget_is_read_whole() -> None:
    html = "<p>x</p>" * 100_000 + '<img src="/end.png">'
    clock = TickingClock(step=0.001)
    found = extract_media(html, BASE, max_links=5000, clock=clock)
    assert not found.malformed and found.read == len(html)
    assert found.media == ("http://site.test/end.png",)


# -- charsets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "charset",
    [
        "idna",  # raised UnicodeError even with errors="replace": the report jammed the queue
        "punycode",  # the same, and quadratic
        "undefined",
        "unicode_escape",
        "raw-unicode-escape",
        "base64",  # not text encodings at all
        "zlib",
        "rot13",
        "no-such-charset",
        "",
        "utf\x00-8",
        "x" * 500,
    ],
)
def test_a_charset_that_is_no_page_encoding_reads_as_utf8(charset: str) -> None:
    assert page_charset(f"text/html; charset={charset}") == "utf-8"
    body = "<img src=/a.png> café".encode()
    assert decode_page(body, f"text/html; charset={charset}") == "<img src=/a.png> café"


@pytest.mark.parametrize(
    ("content_type", "codec", "text"),
    [
        ("text/html; charset=ISO-8859-1", "iso8859-1", "<a href=/página>ü</a>"),
        ('text/html; charset="Shift_JIS"', "shift_jis", "<a href=/ページ>日本</a>"),
        ("text/html;charset=windows-1252", "cp1252", "<a href=/x>€ ü</a>"),
        ("text/html; q=1; charset='utf-16'", "utf-16", "<a href=/página>ü</a>"),
        ("text/html", "utf-8", "<a href=/página>ü</a>"),
    ],
)
def test_a_real_page_encoding_is_honoured(content_type: str, codec: str, text: str) -> None:
    assert page_charset(content_type) == codec
    assert decode_page(text.encode(codec), content_type) == text


def test_a_codec_failing_whatever_the_error_mode_falls_back_to_utf8() -> None:
    # What the fallback is for: a registered text codec that raises anyway.
    assert codecs.lookup("idna")._is_text_encoding  # why the name list is needed
    with pytest.raises(UnicodeError):
        b"<img src=/a.png>".decode("idna", errors="replace")
    assert decode_page(b"<img src=/a.png>", "text/html; charset=idna") == "<img src=/a.png>"


# -- the preserve budget (hotline.verify) -----------------------------------------------------


def test_the_preserve_budget_takes_what_fits_and_holds_content_once() -> None:
    budget = PreserveBudget(100, {"held"})
    assert budget.take("held", 10_000)  # preserved for this report already: free
    assert budget.take("a", 60) and budget.left == 40
    assert not budget.take("b", 41) and budget.left == 40
    assert budget.take("a", 60) and budget.left == 40  # the same content again: free
    assert budget.take("c", 40) and budget.left == 0
    assert not PreserveBudget(0).take("d", 1)
