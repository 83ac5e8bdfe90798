"""Fetching media by URL without becoming a proxy into the private network (SSRF).

Only http and https. The host name is resolved here, every address it resolves to is
checked, and the connection goes to the checked address (the Host header and TLS server name
keep the original name), so a DNS answer cannot change between the check and the connect.
Redirects are followed by hand, and each hop is checked the same way. Loopback, private,
link-local, multicast, reserved and unspecified addresses are refused unless
``url_allowlist`` names the host, the address or a network containing it. The body is read
with a size limit and the whole fetch with a time limit.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from amparo.config import Settings
from amparo.errors import InputError, MediaTooLargeError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

_REDIRECTS = {301, 302, 303, 307, 308}


class FetchError(InputError):
    """The URL could not be fetched (refused status, timeout, connection failure)."""

    code = "fetch_failed"
    http_status = 422


class UrlRefusedError(InputError):
    """The URL is not one Amparo will fetch (scheme, credentials, address)."""

    code = "url_refused"
    http_status = 400


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


def is_public(address: IPAddress) -> bool:
    """Whether an address is an ordinary public unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
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


class Fetcher:
    """Fetches URLs under :class:`FetchLimits`. ``resolver`` is replaceable for tests."""

    def __init__(
        self,
        limits: FetchLimits,
        *,
        resolver: Resolver = system_resolver,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.limits = limits
        self.resolver = resolver
        self.transport = transport

    def check_url(self, url: str) -> tuple[str, str, int, str]:
        """Validate ``url``; return ``(scheme, host, port, address to connect to)``."""
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
        port = port or (443 if scheme == "https" else 80)
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in self.resolver(host, port)]
        if not addresses:
            raise FetchError(f"host {host!r} has no addresses")
        if host not in self.limits.allow_hosts:
            for address in addresses:
                if not is_public(address) and not any(
                    address in net for net in self.limits.allow_networks
                ):
                    raise UrlRefusedError(
                        f"refusing to fetch from {host} ({address}): not a public address",
                        hint="only public addresses are fetched; an admin can allow hosts or "
                        "networks with the url_allowlist setting",
                    )
        return scheme, host, port, str(addresses[0])

    def fetch(self, url: str) -> Fetched:
        deadline = time.monotonic() + self.limits.timeout_seconds
        with httpx.Client(
            transport=self.transport,
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(self.limits.timeout_seconds),
        ) as client:
            for _ in range(self.limits.max_redirects + 1):
                response = self._get(client, url, deadline)
                if isinstance(response, Fetched):
                    return response
                url = response
        raise FetchError(
            f"more than {self.limits.max_redirects} redirects",
            hint="give the final URL of the media",
        )

    def _get(self, client: httpx.Client, url: str, deadline: float) -> Fetched | str:
        scheme, host, port, address = self.check_url(url)
        parts = urlsplit(url)
        netloc = f"[{address}]" if ":" in address else address
        target = urlunsplit((scheme, f"{netloc}:{port}", parts.path or "/", parts.query, ""))
        default_port = port == (443 if scheme == "https" else 80)
        host_header = host if default_port else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]" if default_port else f"[{host}]:{port}"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(f"fetching took longer than {self.limits.timeout_seconds:g} s")
        try:
            with client.stream(
                "GET",
                target,
                headers={"Host": host_header, "Accept": "image/*, video/*, */*;q=0.5"},
                extensions={"sni_hostname": host, "timeout": _timeouts(remaining)},
            ) as response:
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
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > self.limits.max_bytes:
                        raise _too_large(self.limits.max_bytes)
                    if time.monotonic() > deadline:
                        raise FetchError(
                            f"fetching took longer than {self.limits.timeout_seconds:g} s"
                        )
                content_type = str(response.headers.get("content-type", ""))
                return Fetched(content=bytes(body), content_type=content_type, url=url)
        except httpx.TimeoutException:
            raise FetchError(
                f"fetching took longer than {self.limits.timeout_seconds:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise FetchError(f"cannot fetch from {host}: {exc}") from None


def _timeouts(remaining: float) -> dict[str, float]:
    return {"connect": remaining, "read": remaining, "write": remaining, "pool": remaining}


def _too_large(limit: int) -> MediaTooLargeError:
    return MediaTooLargeError(
        f"the media at the URL is over the {limit:,}-byte limit",
        hint="raise fetch_max_bytes if such media is expected",
    )
