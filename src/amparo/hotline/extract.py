"""What a reported page shows or links: media URLs to fetch and hash, and same-host pages to
follow. Pure: no network, no storage, no JavaScript.

Read with the standard library's tolerant :class:`html.parser.HTMLParser` (it accepts any
markup a browser would, unclosed tags and garbage included); whatever still trips it ends the
reading, never the crawl: :func:`extract_media` returns what it found up to there.

Media: ``img`` ``src``/``srcset`` (and the ``data-src``/``data-srcset`` of lazy-loading
galleries, which a browser fills in through JavaScript), ``picture``/``source`` ``srcset``,
``video`` ``src``/``poster``, ``video``/``source`` ``src``, ``og:image``/``twitter:image``
(and ``og:video``) meta tags, and ``<a href>`` to a media file (by its extension). Pages:
``<a href>`` and ``<iframe src>`` to anything else on the page's own host.

Every reference is resolved against the page's URL (or its ``<base href>``), kept only when
``http``/``https``, its fragment dropped, and deduplicated in page order. A page of a million
links costs no more than ``max_links`` of them: reading stops at the cap (``truncated``).

Hostile markup costs bounded time and memory. The parser is fed ``_FEED_CHARS`` at a time and
keeps an unfinished construct (a tag, comment or declaration not closed yet) to scan again on
the next feed; reading stops (``malformed``, what came before kept) once that unfinished part
is over ``max_pending`` characters, so no construct is re-scanned without end. Only the first
``max_attributes`` attributes of a tag count. Runs of ``<`` that open nothing (``<<<<``, which
the parser would take one character at a time) are read as the ``%3C`` a browser would request
in their place. And reading stops (``malformed``) once it has taken ``time_budget`` seconds,
checked between feeds.
"""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit, urlunsplit

MEDIA_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".webp",
    ".bmp",
    ".mp4",
    ".webm",
    ".mov",
    ".m4v",
)
"""A link to a path ending in one of these is a medium, not a page."""

MEDIA_META = frozenset(
    {
        "og:image",
        "og:image:url",
        "og:image:secure_url",
        "og:video",
        "og:video:url",
        "og:video:secure_url",
        "twitter:image",
        "twitter:image:src",
    }
)
MAX_URL_CHARS = 4096
"""Longer references are ignored (no real page needs one; a hostile one costs memory)."""
_FEED_CHARS = 64 * 1024
"""The parser is fed this much at a time, so reading stops soon after the cap is reached."""
MAX_PENDING_CHARS = 256 * 1024
"""Most characters of an unfinished tag, comment or declaration the parser may hold (an inline
``data:`` image of ~190 KB still fits; a tag that never closes stops the reading)."""
MAX_ATTRIBUTES = 200
"""Attributes of one tag read (the rest are ignored)."""
PARSE_SECONDS = 2.0
"""Longest one page is read for."""
_STRIPPED = re.compile(r"[\t\n\r]")
_STRAY_LT = re.compile(r"<+(?![A-Za-z/!?])")
"""``<`` that starts no tag, end tag, comment or declaration: text to the parser, which would
hand it over one character at a time (5 MB of ``<`` took 5 s)."""
_NOT_CHARSETS = frozenset({"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape"})
"""Text codecs that are no page encoding (``idna`` and ``punycode`` raise on bad input even with
``errors="replace"``, and ``punycode`` takes quadratic time)."""


@dataclass(frozen=True)
class Extracted:
    """What one page refers to."""

    media: tuple[str, ...]
    """Media URLs, absolute, deduplicated, in page order."""
    pages: tuple[str, ...]
    """Same-host page URLs (links and frames) to follow, absolute, deduplicated, in order."""
    references: int
    """References read (every candidate URL, kept or not), at most ``max_links``."""
    truncated: bool
    """The page had more than ``max_links`` references; the rest were not read."""
    malformed: bool = False
    """Reading stopped before the markup's end (what came before is kept): see ``stopped``."""
    stopped: str | None = None
    """Why reading stopped early when ``malformed``: the parser tripped on the markup, an
    unfinished tag or comment grew past its cap, or the time budget was spent."""
    read: int = 0
    """Characters of the page handed to the parser."""


def is_media_url(url: str) -> bool:
    """Whether ``url``'s path ends in a media file extension (its query does not count)."""
    return urlsplit(url).path.lower().endswith(MEDIA_EXTENSIONS)


def page_charset(content_type: str) -> str:
    """The text encoding a ``Content-Type`` header names, as a Python codec name: ``utf-8``
    when it names none, an unknown one, or a codec that is not a page encoding (``base64``,
    ``zlib``, ``idna``, ``punycode``, ...)."""
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() != "charset":
            continue
        label = value.strip().strip("\"'").strip()
        if not label or len(label) > 40:
            break
        try:
            info = codecs.lookup(label)
        except (LookupError, ValueError):
            break
        if getattr(info, "_is_text_encoding", True) and info.name not in _NOT_CHARSETS:
            return info.name
        break
    return "utf-8"


def decode_page(data: bytes, content_type: str) -> str:
    """``data`` as text in the encoding its ``Content-Type`` names (:func:`page_charset`),
    undecodable bytes replaced; UTF-8 if that codec fails in any way. Never raises."""
    try:
        return data.decode(page_charset(content_type), errors="replace")
    except Exception:  # a codec that raises even with errors="replace": read it as UTF-8
        return data.decode("utf-8", errors="replace")


def extract_media(
    html: bytes | str,
    base_url: str,
    *,
    max_links: int,
    max_pending: int = MAX_PENDING_CHARS,
    max_attributes: int = MAX_ATTRIBUTES,
    time_budget: float = PARSE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Extracted:
    """The media and same-host pages ``html`` (a page fetched from ``base_url``) refers to,
    reading at most ``max_links`` references, for at most ``time_budget`` seconds of
    ``clock``, holding at most ``max_pending`` characters of an unfinished construct. Never
    raises on bad markup."""
    text = html.decode("utf-8", errors="replace") if isinstance(html, bytes) else html
    text = _STRAY_LT.sub("%3C", text)
    parser = _Parser(base_url, max_links, max_attributes)
    read = 0
    stopped: str | None = None
    deadline = clock() + time_budget
    try:
        for start in range(0, len(text), _FEED_CHARS):
            chunk = text[start : start + _FEED_CHARS]
            parser.feed(chunk)
            read += len(chunk)
            if parser.truncated:
                break
            if len(parser.rawdata) > max_pending:
                stopped = f"an unclosed tag or comment over {max_pending:,} characters"
                break
            if clock() > deadline:
                stopped = f"reading took over {time_budget:g} s"
                break
        else:
            parser.close()
    except Exception:  # the stdlib parser trips on some garbage (e.g. `<![if`); keep what it read
        stopped = "the parser gave up on the markup"
    return Extracted(
        media=tuple(parser.media),
        pages=tuple(parser.pages),
        references=parser.references,
        truncated=parser.truncated,
        malformed=stopped is not None,
        stopped=stopped,
        read=read,
    )


def srcset_urls(value: str) -> list[str]:
    """The URLs of a ``srcset`` (``url [descriptor], url [descriptor], ...``), following the
    HTML standard's parsing: URLs may contain commas, descriptors may contain parentheses."""
    urls: list[str] = []
    position, end = 0, len(value)
    while position < end:
        while position < end and (value[position].isspace() or value[position] == ","):
            position += 1
        start = position
        while position < end and not value[position].isspace():
            position += 1
        url = value[start:position]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            depth = 0
            while position < end:
                char = value[position]
                if char == "(":
                    depth += 1
                elif char == ")":
                    depth = max(0, depth - 1)
                elif char == "," and depth == 0:
                    break
                position += 1
        if url:
            urls.append(url)
    return urls


def absolute(reference: str, base: str) -> str | None:
    """``reference`` resolved against ``base``: an ``http(s)`` URL without its fragment, or
    None (another scheme, an unparseable host or port, too long)."""
    reference = _STRIPPED.sub("", reference).strip()
    if not reference or len(reference) > MAX_URL_CHARS:
        return None
    try:
        parts = urlsplit(urljoin(base, reference))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        _port = parts.port  # raises on a malformed or out-of-range port
    except ValueError:
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))


def host_of(url: str) -> str:
    """The URL's host name, lower-cased; empty when it has none or is malformed."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


class _Parser(HTMLParser):
    def __init__(self, page_url: str, max_links: int, max_attributes: int) -> None:
        super().__init__(convert_charrefs=True)
        self.max_attributes = max_attributes
        self.page_url = page_url
        self.base = page_url
        self.host = host_of(page_url)
        self.max_links = max_links
        self.references = 0
        self.truncated = False
        self.media: list[str] = []
        self.pages: list[str] = []
        self._seen_media: set[str] = set()
        self._seen_pages: set[str] = set()
        self._based = False
        self._in_picture = 0
        self._in_video = 0

    # The parser calls these; tag and attribute names arrive lower-cased.

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.truncated:
            return
        values = {name: value for name, value in attrs[: self.max_attributes] if value is not None}
        if tag == "base" and not self._based and "href" in values:
            self._based = True
            resolved = absolute(values["href"], self.page_url)
            if resolved is not None:
                self.base = resolved
        elif tag == "img":
            self._add_media(values.get("src"), values.get("data-src"))
            self._add_srcsets(values.get("srcset"), values.get("data-srcset"))
        elif tag == "picture":
            self._in_picture += 1
        elif tag == "video":
            self._in_video += 1
            self._add_media(values.get("src"), values.get("poster"))
        elif tag == "source":
            self._add_srcsets(values.get("srcset"))
            if self._in_video or not self._in_picture:
                self._add_media(values.get("src"))
        elif tag == "meta":
            key = (values.get("property") or values.get("name") or "").strip().lower()
            if key in MEDIA_META:
                self._add_media(values.get("content"))
        elif tag == "a" or tag == "area":
            self._add_link(values.get("href"))
        elif tag in ("iframe", "frame"):
            self._add_page(values.get("src"))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "picture":
            self._in_picture = max(0, self._in_picture - 1)
        elif tag == "video":
            self._in_video = max(0, self._in_video - 1)

    # -- references ---------------------------------------------------------------------------

    def _count(self) -> bool:
        """Count one more reference; False (and ``truncated``) past the cap."""
        if self.references >= self.max_links:
            self.truncated = True
            return False
        self.references += 1
        return True

    def _add_srcsets(self, *values: str | None) -> None:
        for value in values:
            if value:
                self._add_media(*srcset_urls(value[: MAX_URL_CHARS * 16]))

    def _add_media(self, *references: str | None) -> None:
        for reference in references:
            if reference is None or not self._count():
                continue
            url = absolute(reference, self.base)
            if url is not None:
                _keep(url, self.media, self._seen_media)

    def _add_link(self, reference: str | None) -> None:
        if reference is None or not self._count():
            return
        url = absolute(reference, self.base)
        if url is None:
            return
        if is_media_url(url):
            _keep(url, self.media, self._seen_media)
        elif host_of(url) == self.host:
            _keep(url, self.pages, self._seen_pages)

    def _add_page(self, reference: str | None) -> None:
        if reference is None or not self._count():
            return
        url = absolute(reference, self.base)
        if url is not None and host_of(url) == self.host and not is_media_url(url):
            _keep(url, self.pages, self._seen_pages)


def _keep(url: str, into: list[str], seen: set[str]) -> None:
    if url not in seen:
        seen.add(url)
        into.append(url)


__all__ = [
    "MEDIA_EXTENSIONS",
    "Extracted",
    "absolute",
    "decode_page",
    "extract_media",
    "is_media_url",
    "page_charset",
    "srcset_urls",
]
