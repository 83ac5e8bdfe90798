"""Which URLs Amparo may reach: the address policy against SSRF, for ``url=`` fetches and
webhook deliveries alike (:mod:`amparo.fetch` does the fetching).

Only http and https, no credentials. The host name is resolved here and every address it
resolves to is checked; the caller then connects to the checked address, so a DNS answer
cannot change between the check and the connect. Loopback, private, link-local, multicast,
reserved and unspecified addresses are refused unless ``url_allowlist`` names the host, the
address or a network containing it; so are IPv6 addresses that embed such an IPv4 address
(IPv4-mapped, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple
from urllib.parse import urlsplit

from amparo.config import Settings
from amparo.errors import FetchError, UrlRefusedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

# IPv6 prefixes whose last 32 bits are an IPv4 address the packets end up at.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


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
