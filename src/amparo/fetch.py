"""Outgoing HTTP without becoming a proxy into the private network (SSRF) or a hostage to it.

Used for media fetched by URL (``url=``) and for webhook deliveries; both go through the same
address policy and the same deadline.

Address policy (:class:`UrlPolicy`): only http and https. The host name is resolved here, every
address it resolves to is checked, and the connection goes to the checked address (the Host
header and TLS server name keep the original name), so a DNS answer cannot change between the
check and the connect. Loopback, private, link-local, multicast, reserved and unspecified
addresses are refused unless ``url_allowlist`` names the host, the address or a network
containing it; so are IPv6 addresses that embed such an IPv4 address (IPv4-mapped, 6to4
``2002::/16``, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``). Redirects are followed by hand,
and each hop is checked the same way.

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

import asyncio
import functools
import ipaddress
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

import anyio
import httpx

from amparo.config import Settings
from amparo.errors import (
    FetchBusyError,
    FetchError,
    MediaTooLargeError,
    UrlRefusedError,
)
from amparo.redaction import redact_http_client_logs

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
T = TypeVar("T")

_REDIRECTS = {301, 302, 303, 307, 308}
# IPv6 prefixes whose last 32 bits are an IPv4 address the packets end up at.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 32 * 1024 * 1024
    timeout_seconds: float = 10.0
    max_redirects: int = 5
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


class Target(NamedTuple):
    """A checked URL: where to connect (``address``) and what to call the host."""

    scheme: str
    host: str
    port: int
    address: str


def parse_allowlist(spec: str) -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    """Split ``"127.0.0.1,10.0.0.0/8,files.internal"`` into host names and networks."""
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for item in spec.split(","):
        item = item.strip().lower()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
        except ValueError:
            hosts.add(item.rstrip("."))
    return frozenset(hosts), tuple(networks)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to: IPv4-mapped, 6to4 or NAT64; else None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether an address is an ordinary public unicast address.

    An IPv6 address that embeds an IPv4 address (mapped, 6to4, NAT64) is public only when the
    IPv4 address is: a 6to4 relay or NAT64 gateway delivers the packets to it.
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None and not is_public(inner):
            return False
        if address.ipv4_mapped is not None:
            return True
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
        or not address.is_global
    )


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve host {host!r}: {exc}") from None
    return sorted({str(info[4][0]) for info in infos})


# Name lookups block in getaddrinfo and cannot be cancelled; they get threads of their own so
# that a hanging resolver never takes the threads that serve requests.
_RESOLVER_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="amparo-dns")


class UrlPolicy:
    """Which URLs may be reached: http(s), no credentials, public addresses or allow-listed."""

    def __init__(
        self,
        allow_hosts: frozenset[str] = frozenset(),
        allow_networks: tuple[IPNetwork, ...] = (),
        *,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.allow_hosts = allow_hosts
        self.allow_networks = allow_networks
        self.resolver = resolver

    @classmethod
    def from_settings(
        cls, settings: Settings, *, resolver: Resolver = system_resolver
    ) -> UrlPolicy:
        hosts, networks = parse_allowlist(settings.url_allowlist)
        return cls(hosts, networks, resolver=resolver)

    def parse(self, url: str) -> tuple[str, str, int]:
        """``(scheme, host, port)`` of an acceptable-looking URL; the address is not checked."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise UrlRefusedError(f"not a valid URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise UrlRefusedError(
                f"only http and https URLs are fetched, not {scheme or 'a relative URL'!r}",
                hint="give an absolute http(s) URL",
            )
        if parts.username or parts.password:
            raise UrlRefusedError("URLs with credentials are not fetched")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise UrlRefusedError("the URL has no host")
        return scheme, host, port or (443 if scheme == "https" else 80)

    def check(self, url: str) -> Target:
        """Validate ``url`` and the addresses its host resolves to (blocking resolver)."""
        scheme, host, port = self.parse(url)
        return self._checked(scheme, host, port, self._addresses(host, port))

    async def check_async(self, url: str) -> Target:
        """:meth:`check` for the event loop: the name is looked up on the resolver threads."""
        scheme, host, port = self.parse(url)
        future = _RESOLVER_THREADS.submit(self._addresses, host, port)
        return self._checked(scheme, host, port, await asyncio.wrap_future(future))

    def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            return [ipaddress.ip_address(a.split("%")[0]) for a in self.resolver(host, port)]

    def _checked(self, scheme: str, host: str, port: int, addresses: list[IPAddress]) -> Target:
        if not addresses:
            raise FetchError(f"host {host!r} has no addresses")
        if host not in self.allow_hosts:
            for address in addresses:
                if not is_public(address) and not any(
                    address in net for net in self.allow_networks
                ):
                    raise UrlRefusedError(
                        f"refusing to connect to {host} ({address}): not a public address",
                        hint="only public addresses are reached; an admin can allow hosts or "
                        "networks with the url_allowlist setting",
                    )
        return Target(scheme, host, port, str(addresses[0]))


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
