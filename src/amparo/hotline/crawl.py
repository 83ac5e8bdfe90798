"""The verification crawl's network side: fetch a reported URL, the same-host pages it links
(depth- and count-bounded) and the media they show, each through the safe fetcher
(:class:`amparo.fetch.Fetcher`: the address policy against SSRF on every redirect hop, one
deadline per fetch, a size cap). Pure: no storage; what to do with each medium is the
caller's ``handle``.

Bounds, so a hostile site costs a known amount whatever it serves:

- pages: at most ``max_pages``, ``depth`` links away from the reported page, on its host,
  each at most ``page_max_bytes`` and its first ``max_links`` references read
  (:func:`amparo.hotline.extract.extract_media`);
- media: at most ``max_media`` URLs, each at most the fetcher's ``max_bytes``; ``concurrency``
  of them fetched (and handled) at a time on one event loop, so at most that many bodies are
  held at once, and a body is dropped as soon as ``handle`` returns;
- time: every fetch has the fetcher's deadline, and reading a page's markup has its own
  budget (``parse_seconds``, on a worker thread, so the other fetches' deadlines hold meanwhile),
  so a crawl takes at most ``max_pages + ceil(max_media / concurrency)`` deadlines plus
  ``max_pages`` reading budgets (see :meth:`CrawlLimits.worst_seconds`).

A page is decoded in the charset its Content-Type names only when that is a real text encoding
(:func:`amparo.hotline.extract.decode_page`; ``idna``, ``punycode``, ``base64``, ... are read as
UTF-8), so no header can make reading it fail.

A medium that cannot be fetched (404, over the cap, a refused address, a timeout) is recorded
with its error and the crawl goes on; only the reported URL itself failing fails the crawl
(:attr:`CrawlResult.page_error`). The page's HTML is dropped once its references are read.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup

from amparo.config import DEFAULTS, Settings
from amparo.errors import AmparoError, FetchError
from amparo.fetch import Fetched, Fetcher
from amparo.hotline.extract import (
    PARSE_SECONDS,
    Extracted,
    decode_page,
    extract_media,
    host_of,
)
from amparo.media.sniff import HEAD_BYTES, media_kind, sniff

T = TypeVar("T")

MediumHandler = Callable[[str, Fetched], T]
"""What the caller does with each medium fetched: ``handle(media_url, fetched)``; it runs on a
worker thread (hashing overlaps the other downloads). An :class:`AmparoError` it raises is
recorded as that medium's error; anything else ends the crawl."""

_PAGE_TYPES = ("text/", "application/xhtml", "application/xml")


@dataclass(frozen=True)
class CrawlLimits:
    """What one report's crawl may cost (the ``hotline_crawl_*`` settings)."""

    depth: int = DEFAULTS.hotline_crawl_depth
    max_pages: int = DEFAULTS.hotline_crawl_max_pages
    max_media: int = DEFAULTS.hotline_crawl_max_media
    max_links: int = DEFAULTS.hotline_crawl_max_links
    page_max_bytes: int = DEFAULTS.hotline_page_max_bytes
    concurrency: int = 4
    """Media fetched and handled at a time."""
    parse_seconds: float = PARSE_SECONDS
    """Longest one page's markup is read for (the rest of it is then ignored)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> CrawlLimits:
        return cls(
            depth=settings.hotline_crawl_depth,
            max_pages=settings.hotline_crawl_max_pages,
            max_media=settings.hotline_crawl_max_media,
            max_links=settings.hotline_crawl_max_links,
            page_max_bytes=settings.hotline_page_max_bytes,
        )

    def worst_seconds(self, fetch_timeout: float) -> float:
        """The longest a crawl can take waiting on the network (every fetch at its deadline)
        and reading pages (every page for its whole ``parse_seconds``)."""
        pages = max(1, self.max_pages)
        rounds = pages + math.ceil(self.max_media / max(1, self.concurrency))
        return rounds * fetch_timeout + pages * self.parse_seconds


@dataclass(frozen=True)
class CrawledMedium(Generic[T]):
    """One media URL: what ``handle`` made of it, or why it could not be fetched."""

    url: str
    result: T | None = None
    error: str | None = None
    error_code: str | None = None
    """The error's kind: ``fetch_failed``, ``media_too_large``, ``url_refused``, ..."""
    status: int | None = None
    """The HTTP status the server refused it with, when that was the reason."""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class CrawlResult(Generic[T]):
    """What a crawl found. Holds no page HTML; media bodies only if ``handle`` returns them."""

    url: str
    """The reported URL."""
    final_url: str
    """Where the reported URL led, after redirects."""
    pages: int = 0
    """Pages fetched (the reported page included)."""
    media: list[CrawledMedium[T]] = field(default_factory=list)
    """Every media URL found (at most ``max_media``), in page order, each handled or failed."""
    media_over_cap: int = 0
    """Media URLs found past ``max_media`` (not fetched)."""
    truncated: bool = False
    """A page had more than ``max_links`` references (the rest were not read)."""
    errors: list[str] = field(default_factory=list)
    """``URL: why`` of every page that failed or was cut short (media errors are per medium)."""
    page_error: AmparoError | None = None
    """Why the reported URL itself could not be fetched (then nothing else was)."""
    is_medium: bool = False
    """The reported URL is itself an image or video (its one medium)."""

    @property
    def media_urls(self) -> list[str]:
        return [m.url for m in self.media]

    @property
    def media_errors(self) -> int:
        return sum(1 for m in self.media if not m.ok)


class Crawler:
    """Crawls one reported URL at a time under :class:`CrawlLimits`.

    ``fetcher`` fetches media (its limits: the ``fetch_*`` settings); pages go through a copy
    of it capped at ``page_max_bytes``. The reported URL may be a page or a medium, so it is
    fetched under the larger of the two caps (a page over ``page_max_bytes`` is then read up
    to it)."""

    def __init__(self, fetcher: Fetcher, limits: CrawlLimits) -> None:
        self.limits = limits
        self.media_fetcher = fetcher
        self.page_fetcher = _capped(fetcher, limits.page_max_bytes)
        self.first_fetcher = _capped(fetcher, max(limits.page_max_bytes, fetcher.limits.max_bytes))

    def crawl(self, url: str, handle: MediumHandler[T]) -> CrawlResult[T]:
        """Crawl ``url`` (from synchronous code: runs its own event loop)."""
        return anyio.run(self.crawl_async, url, handle)

    def crawl_bytes(self, url: str) -> CrawlResult[bytes]:
        """Crawl ``url`` keeping each medium's bytes (small crawls and tests)."""
        return self.crawl(url, lambda _url, fetched: fetched.content)

    async def crawl_async(self, url: str, handle: MediumHandler[T]) -> CrawlResult[T]:
        """Crawl ``url`` on the running event loop."""
        run = _Crawl(self, url, handle)
        try:
            await run.run()
        except BaseExceptionGroup as group:
            # A handler's unexpected failure (the database went away): raise it as itself.
            first = group.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        return run.result


def _capped(fetcher: Fetcher, max_bytes: int) -> Fetcher:
    return Fetcher(
        replace(fetcher.limits, max_bytes=max_bytes),
        resolver=fetcher.resolver,
        transport=fetcher.transport,
    )


async def _fetch(fetcher: Fetcher, url: str) -> Fetched:
    """``fetcher.fetch_async(url)``, any failure an :class:`AmparoError` (a URL the HTTP
    client itself rejects is one more unfetchable URL, not a crash)."""
    try:
        return await fetcher.fetch_async(url)
    except AmparoError:
        raise
    except Exception as exc:
        raise FetchError(f"cannot fetch {url[:200]}: {type(exc).__name__}: {exc}") from None


def _is_medium(fetched: Fetched) -> bool:
    kind = fetched.content_type.split(";")[0].strip().lower()
    if kind.startswith(("image/", "video/")):
        return True
    return media_kind(sniff(fetched.content[:HEAD_BYTES])) is not None


def _is_page(fetched: Fetched) -> bool:
    kind = fetched.content_type.split(";")[0].strip().lower()
    return not kind or kind.startswith(_PAGE_TYPES) or "html" in kind


class _Crawl(Generic[T]):
    """One crawl's state: the page queue, the media found, the downloads in flight."""

    def __init__(self, crawler: Crawler, url: str, handle: MediumHandler[T]) -> None:
        self.crawler = crawler
        self.limits = crawler.limits
        self.handle = handle
        self.result: CrawlResult[T] = CrawlResult(url=url, final_url=url)
        self.slots = anyio.CapacityLimiter(max(1, self.limits.concurrency))
        self.seen_media: set[str] = set()
        self.hosts = {host_of(url)}

    async def run(self) -> None:
        url = self.result.url
        try:
            first = await _fetch(self.crawler.first_fetcher, url)
        except AmparoError as exc:
            self.result.page_error = exc
            return
        self.result.final_url = first.url
        self.hosts.add(host_of(first.url))
        self.result.pages = 1
        async with anyio.create_task_group() as downloads:
            if _is_medium(first):
                self.result.is_medium = True
                self._add_media(downloads, [url], fetched=first)
                return
            if not _is_page(first):
                self.result.errors.append(f"{url}: neither a page nor media ({first.content_type})")
                return
            if len(first.content) > self.limits.page_max_bytes:
                self.result.errors.append(
                    f"{url}: the page is over {self.limits.page_max_bytes:,} bytes; "
                    "only that much was read"
                )
            visited = {url, first.url}
            links = await self._read(downloads, first)
            del first  # the HTML is not kept past its extraction
            await self._follow(downloads, links, visited)

    async def _follow(
        self, downloads: TaskGroup, links: tuple[str, ...], visited: set[str]
    ) -> None:
        """Fetch the same-host pages the reported page links, breadth first, up to the
        limits, reading each for media (and for more pages while ``depth`` allows)."""
        queue: deque[tuple[str, int]] = deque()
        self._enqueue(queue, links, 1, visited)
        while queue and self.result.pages < self.limits.max_pages:
            url, depth = queue.popleft()
            try:
                page = await _fetch(self.crawler.page_fetcher, url)
            except AmparoError as exc:
                self.result.errors.append(f"{url}: {exc.message}")
                continue
            self.result.pages += 1
            visited.add(page.url)
            if _is_medium(page):
                self._add_media(downloads, [url], fetched=page)
            elif not _is_page(page):
                self.result.errors.append(f"{url}: neither a page nor media ({page.content_type})")
            else:
                self._enqueue(queue, await self._read(downloads, page), depth + 1, visited)
            del page

    def _enqueue(
        self,
        queue: deque[tuple[str, int]],
        links: tuple[str, ...],
        depth: int,
        visited: set[str],
    ) -> None:
        if depth > self.limits.depth:
            return
        for link in links:
            if link not in visited and host_of(link) in self.hosts:
                visited.add(link)
                queue.append((link, depth))

    async def _read(self, downloads: TaskGroup, page: Fetched) -> tuple[str, ...]:
        """Extract a page's references on a worker thread (its HTML is dropped there); start
        its media's downloads; return its same-host page links."""
        found = await anyio.to_thread.run_sync(self._extract, page)
        if found.truncated:
            self.result.truncated = True
            self.result.errors.append(
                f"{page.url}: more than {self.limits.max_links:,} links; the rest were not read"
            )
        if found.malformed:
            self.result.errors.append(
                f"{page.url}: malformed markup ({found.stopped}); read up to the fault"
            )
        self._add_media(downloads, found.media)
        return found.pages

    def _extract(self, page: Fetched) -> Extracted:
        """Decode and read one page (off the event loop: bounded, but seconds of CPU)."""
        return extract_media(
            decode_page(page.content[: self.limits.page_max_bytes], page.content_type),
            page.url,
            max_links=self.limits.max_links,
            time_budget=self.limits.parse_seconds,
        )

    def _add_media(
        self,
        downloads: TaskGroup,
        urls: tuple[str, ...] | list[str],
        *,
        fetched: Fetched | None = None,
    ) -> None:
        for url in urls:
            if url in self.seen_media:
                continue
            if len(self.result.media) >= self.limits.max_media:
                self.result.media_over_cap += 1
                continue
            self.seen_media.add(url)
            index = len(self.result.media)
            self.result.media.append(CrawledMedium(url, error="not fetched"))
            downloads.start_soon(self._medium, index, url, fetched)

    async def _medium(self, index: int, url: str, fetched: Fetched | None) -> None:
        async with self.slots:
            try:
                if fetched is None:
                    fetched = await _fetch(self.crawler.media_fetcher, url)
                value = await anyio.to_thread.run_sync(self.handle, url, fetched)
            except AmparoError as exc:
                self.result.media[index] = CrawledMedium(
                    url,
                    error=exc.message,
                    error_code=exc.code,
                    status=exc.status if isinstance(exc, FetchError) else None,
                )
                return
            finally:
                fetched = None  # the body goes as soon as it is handled
            self.result.media[index] = CrawledMedium(url, result=value)


__all__ = ["CrawlLimits", "CrawlResult", "CrawledMedium", "Crawler", "MediumHandler"]
