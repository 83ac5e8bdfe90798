"""Outgoing HTTP without becoming a proxy into the private network (SSRF) or a hostage to it.

Used for media fetched by URL (``url=``) and for webhook deliveries; both go through the same
address policy and the same deadline.

Address policy: :mod:`amparo.url_policy` checks every URL and every address its host resolves
to, and the connection goes to the checked address (:func:`pinned_request`: the Host header and
TLS server name keep the original name), so a DNS answer cannot change between the check and
the connect. Redirects are followed by hand, and each hop is checked the same way.

Deadline (:func:`within_deadline`): httpx's timeouts bound each read, so a server trickling its
headers one byte at a time would never trip them. Every request therefore runs as a task
under one cancel scope covering DNS, connect, headers and body: at the deadline the task is
cancelled and its connection closed, whatever the server is doing. Async callers (the API's
``url=`` routes) await it on the event loop and hold no worker thread while they wait; sync
callers (the webhook deliverer, the CLI) run it in a short-lived event loop of their own.

httpx logs every request's URL at INFO; importing this module installs
:mod:`amparo.redaction` on its loggers, so tokens in fetched or webhook URLs never reach the
logs.
"""

from __future__ import annotations

import functools
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

import anyio
import httpx

from amparo.config import DEFAULTS, Settings
from amparo.errors import (
    FetchBusyError,
    FetchError,
    MediaTooLargeError,
)
from amparo.redaction import redact_http_client_logs
from amparo.url_policy import (
    IPNetwork,
    Resolver,
    Target,
    UrlPolicy,
    parse_allowlist,
    system_resolver,
)

T = TypeVar("T")

_REDIRECTS = {301, 302, 303, 307, 308}


@dataclass(frozen=True)
class FetchLimits:
    """What one fetch may cost; the defaults are the ``fetch_*`` settings'."""

    max_bytes: int = DEFAULTS.fetch_max_bytes
    timeout_seconds: float = DEFAULTS.fetch_timeout_seconds
    max_redirects: int = DEFAULTS.fetch_max_redirects
    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchLimits:
        hosts, networks = parse_allowlist(settings.url_allowlist)
        return cls(
            max_bytes=settings.fetch_max_bytes,
            timeout_seconds=float(settings.fetch_timeout_seconds),
            max_redirects=settings.fetch_max_redirects,
            allow_hosts=hosts,
            allow_networks=networks,
        )


@dataclass(frozen=True)
class Fetched:
    content: bytes
    content_type: str
    url: str
    """The final URL, after redirects."""


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client: building one loads the CA bundle (tens of
    milliseconds of CPU), which would otherwise stall the event loop on every fetch."""
    return httpx.create_ssl_context()


async def within_deadline(seconds: float, what: str, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work()`` and cancel it (closing its connections) after ``seconds`` in total."""
    try:
        with anyio.fail_after(seconds):
            return await work()
    except TimeoutError:
        raise FetchError(
            f"{what} took longer than {seconds:g} s",
            hint="the server answered too slowly; the limit covers connecting, the headers "
            "and the body together",
        ) from None


def run_with_deadline(seconds: float, what: str, work: Callable[[], Awaitable[T]]) -> T:
    """:func:`within_deadline` from synchronous code (not from inside an event loop)."""

    async def main() -> T:
        return await within_deadline(seconds, what, work)

    return anyio.run(main)


def pinned_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    target: Target,
    headers: dict[str, str],
    content: bytes | None = None,
) -> httpx.Request:
    """A request for ``url`` addressed to ``target.address``, keeping the Host header and TLS
    server name of the URL's host (so a second DNS answer is never used)."""
    scheme, host, port, address = target
    parts = urlsplit(url)
    netloc = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((scheme, f"{netloc}:{port}", parts.path or "/", parts.query, ""))
    default_port = port == (443 if scheme == "https" else 80)
    host_header = host if default_port else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if default_port else f"[{host}]:{port}"
    return client.build_request(
        method,
        pinned,
        headers={**headers, "Host": host_header},
        content=content,
        extensions={"sni_hostname": host},
    )


class Fetcher:
    """Fetches URLs under :class:`FetchLimits`. ``resolver`` is replaceable for tests."""

    def __init__(
        self,
        limits: FetchLimits,
        *,
        resolver: Resolver = system_resolver,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.limits = limits
        self.transport = transport
        self.policy = UrlPolicy(limits.allow_hosts, limits.allow_networks, resolver=resolver)

    @property
    def resolver(self) -> Resolver:
        return self.policy.resolver

    @resolver.setter
    def resolver(self, resolver: Resolver) -> None:
        self.policy.resolver = resolver

    def check_url(self, url: str) -> Target:
        """Validate ``url``; return ``(scheme, host, port, address to connect to)``."""
        return self.policy.check(url)

    def fetch(self, url: str) -> Fetched:
        """Fetch ``url`` from synchronous code (a worker thread or the CLI)."""
        return run_with_deadline(self.limits.timeout_seconds, "fetching", lambda: self._fetch(url))

    async def fetch_async(self, url: str) -> Fetched:
        """Fetch ``url`` on the event loop, all of it within ``timeout_seconds``."""
        return await within_deadline(
            self.limits.timeout_seconds, "fetching", lambda: self._fetch(url)
        )

    async def _fetch(self, url: str) -> Fetched:
        async with httpx.AsyncClient(
            transport=self.transport,
            verify=tls_context(),
            follow_redirects=False,
            trust_env=False,
            # Per-read limits as a backstop; the deadline around this is what bounds the total.
            timeout=httpx.Timeout(self.limits.timeout_seconds),
        ) as client:
            for _ in range(self.limits.max_redirects + 1):
                response = await self._get(client, url)
                if isinstance(response, Fetched):
                    return response
                url = response
        raise FetchError(
            f"more than {self.limits.max_redirects} redirects",
            hint="give the final URL of the media",
        )

    async def _get(self, client: httpx.AsyncClient, url: str) -> Fetched | str:
        target = await self.policy.check_async(url)
        host = target.host
        request = pinned_request(
            client, "GET", url, target, {"Accept": "image/*, video/*, */*;q=0.5"}
        )
        try:
            response = await client.send(request, stream=True)
            try:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError(f"{url} redirected without a Location")
                    return str(urljoin(url, str(location)))
                if response.status_code != 200:
                    raise FetchError(
                        f"{host} answered {response.status_code} for the URL",
                        hint="check that the URL is right and publicly reachable",
                        status=response.status_code,
                    )
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self.limits.max_bytes:
                    raise _too_large(self.limits.max_bytes)
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > self.limits.max_bytes:
                        raise _too_large(self.limits.max_bytes)
                content_type = str(response.headers.get("content-type", ""))
                return Fetched(content=bytes(body), content_type=content_type, url=url)
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise FetchError(
                f"fetching took longer than {self.limits.timeout_seconds:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise FetchError(f"cannot fetch from {host}: {exc}") from None


class FetchSlots:
    """Caps URL fetches in flight: per API key, and in the whole process.

    Fetches wait on the network, not on CPU; without a cap one key could hold hundreds of
    connections (and their buffered bodies) open. Over the cap a request is refused at once
    (429 with Retry-After) rather than queued, so nothing piles up behind a slow server.
    """

    def __init__(self, per_key: int, total: int) -> None:
        self.per_key = per_key
        self.total = total
        self._lock = threading.Lock()
        self._by_key: dict[str, int] = {}
        self._in_flight = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchSlots:
        return cls(settings.fetch_max_concurrent_per_key, settings.fetch_max_concurrent)

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._lock:
            if self._by_key.get(key, 0) >= self.per_key:
                raise FetchBusyError(
                    f"this key already has {self.per_key} URL fetches in flight",
                    hint="wait for them to finish (fetch_max_concurrent_per_key), or upload "
                    "the media instead",
                    retry_after=1.0,
                )
            if self._in_flight >= self.total:
                raise FetchBusyError(
                    f"the server already has {self.total} URL fetches in flight",
                    hint="try again shortly (fetch_max_concurrent), or upload the media instead",
                    retry_after=1.0,
                )
            self._by_key[key] = self._by_key.get(key, 0) + 1
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                left = self._by_key[key] - 1
                if left:
                    self._by_key[key] = left
                else:
                    del self._by_key[key]


redact_http_client_logs()


def _too_large(limit: int) -> MediaTooLargeError:
    return MediaTooLargeError(
        f"the media at the URL is over the {limit:,}-byte limit",
        hint="raise fetch_max_bytes if such media is expected",
    )
