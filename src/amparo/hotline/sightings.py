"""Is reported content still served? The network side of a removal re-check
(:mod:`amparo.hotline.rechecks` decides what the answers mean for the report). Pure: no
storage.

Two readings, both through the safe fetcher:

- :func:`fetch_again` fetches one item's media URL again;
- :func:`sweep_page` re-crawls the reported page with the verification crawl's machinery
  (:class:`amparo.hotline.crawl.Crawler`) and hashes every medium it shows now, so that a
  file renamed, or served under ``?v=2``, is still found on the page.

A refused address counts as removal only for the URL's **own** host name: its DNS now points
at an address the policy refuses (a sinkholed domain). A refused *redirect hop* says nothing
of the content (a hostile host can redirect us to ``127.0.0.1`` while serving everyone else),
so it is inconclusive.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from amparo.errors import AmparoError, FetchError, UrlRefusedError
from amparo.fetch import Fetched, Fetcher
from amparo.hashing import MediaHashes
from amparo.hotline.crawl import CrawledMedium, Crawler
from amparo.url_policy import Resolver

Outcome = Literal["up", "gone", "inconclusive"]

GONE_STATUSES = frozenset({404, 410})
# getaddrinfo's EAI_AGAIN: the resolver could not answer now, which says nothing of the host.
_TEMPORARY_DNS = re.compile(r"temporary failure|try again|\[Errno -3\]", re.IGNORECASE)


@dataclass(frozen=True)
class Probe:
    """What one reading found for an item, and why."""

    outcome: Outcome
    reason: str


@dataclass(frozen=True)
class Seen:
    """One medium the re-crawl fetched: its URL and hashes (its bytes already dropped)."""

    url: str
    sha256: str
    hashes: MediaHashes | None = None
    """None when the bytes could not be hashed as media (only ``sha256`` then)."""


@dataclass
class Sweep:
    """What re-crawling the reported page found."""

    url: str
    verdict: Probe | None = None
    """Set when the page itself decides: ``gone`` (404/410, no longer resolves, sinkholed)
    or ``inconclusive`` (a timeout, a 5xx, a refused redirect, a medium that could not be
    fetched); None when the page was read and ``media`` is all it shows."""
    media: list[Seen] = field(default_factory=list)
    capped: bool = False
    """The page had more media or links than the crawl limits read."""


def host_verdict(fetcher: Fetcher, resolver: Resolver, url: str) -> Probe | None:
    """What the URL's own host says before anything is fetched: ``gone`` when its name no
    longer resolves or resolves only to addresses the policy refuses (sinkholed);
    ``inconclusive`` when it cannot be told now; None when the host is there to ask."""
    try:
        _scheme, host, port = fetcher.policy.parse(url)
    except UrlRefusedError as exc:
        return Probe("inconclusive", exc.message)
    literal = _is_literal(host)
    if not literal:
        try:
            if not resolver(host, port):
                return Probe("gone", f"{host} has no addresses")
        except (FetchError, OSError, UnicodeError) as exc:
            if _TEMPORARY_DNS.search(str(exc)):
                return Probe("inconclusive", f"looking {host} up failed: {exc}")
            return Probe("gone", f"{host} does not resolve: {exc}")
    try:
        fetcher.policy.check(url)
    except UrlRefusedError as exc:
        if literal:
            # An address in the URL itself that the policy now refuses: the allow-list
            # changed, not the host.
            return Probe("inconclusive", exc.message)
        return Probe("gone", f"{host} now points at a refused address (sinkholed): {exc.message}")
    except (FetchError, OSError, UnicodeError) as exc:
        return Probe("inconclusive", f"looking {host} up failed: {exc}")
    return None


def fetch_again(fetcher: Fetcher, resolver: Resolver, url: str) -> Probe | bytes:
    """Fetch an item's media URL again: its bytes, or why they cannot say (``gone``: 404,
    410, the host no longer resolves or is sinkholed; ``inconclusive``: anything else)."""
    verdict = host_verdict(fetcher, resolver, url)
    if verdict is not None:
        return verdict
    try:
        return fetcher.fetch(url).content
    except UrlRefusedError as exc:
        # The URL's own host passed the policy a moment ago: a redirect hop was refused.
        return Probe("inconclusive", f"a redirect was refused: {exc.message}")
    except FetchError as exc:
        status = exc.status
        if status in GONE_STATUSES:
            return Probe("gone", f"HTTP {status}")
        return Probe("inconclusive", exc.message)
    except AmparoError as exc:
        return Probe("inconclusive", exc.message)


def sweep_page(
    crawler: Crawler,
    resolver: Resolver,
    url: str,
    hash_bytes: Callable[[bytes], MediaHashes],
) -> Sweep:
    """Re-crawl the reported page ``url``; hash each medium it shows (see :class:`Sweep`)."""
    sweep = Sweep(url)
    verdict = host_verdict(crawler.media_fetcher, resolver, url)
    if verdict is not None:
        sweep.verdict = Probe(verdict.outcome, f"the reported page: {verdict.reason}")
        return sweep

    def handle(media_url: str, fetched: Fetched) -> Seen:
        sha256 = hashlib.sha256(fetched.content).hexdigest()
        try:
            return Seen(media_url, sha256, hash_bytes(fetched.content))
        except AmparoError:
            return Seen(media_url, sha256)

    result = crawler.crawl(url, handle)
    error = result.page_error
    if isinstance(error, UrlRefusedError):
        sweep.verdict = Probe("inconclusive", f"the reported page: a redirect was refused: {error}")
        return sweep
    if isinstance(error, FetchError) and error.status in GONE_STATUSES:
        sweep.verdict = Probe("gone", f"the reported page answers HTTP {error.status}")
        return sweep
    if error is not None:
        sweep.verdict = Probe("inconclusive", f"the reported page: {error.message}")
        return sweep
    sweep.media = [m.result for m in result.media if m.result is not None]
    sweep.capped = result.truncated or result.media_over_cap > 0
    unsure = [m for m in result.media if _unsure(m)]
    if unsure:
        # The content may be behind a medium we could not read (a hostile host can stall
        # the one that matters): do not call it removed on this re-check.
        first = unsure[0]
        sweep.verdict = Probe(
            "inconclusive",
            f"{len(unsure)} medium(s) on the page could not be fetched, e.g. {first.url[:200]}: "
            f"{(first.error or '')[:200]}",
        )
    return sweep


def _unsure(medium: CrawledMedium[Seen]) -> bool:
    """A medium the re-crawl could not read for a reason that says nothing of its content:
    a timeout, a 5xx, a refused redirect (not a 4xx: that file is not served; not a body
    over the size cap: the item's content was hashed under the same cap)."""
    if medium.ok:
        return False
    if medium.error_code == "url_refused":
        return True
    if medium.error_code == "fetch_failed":
        status = medium.status
        return status is None or not 400 <= status < 500 or status == 429
    return medium.error_code is None


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


__all__ = [
    "GONE_STATUSES",
    "Outcome",
    "Probe",
    "Seen",
    "Sweep",
    "fetch_again",
    "host_verdict",
    "sweep_page",
]
