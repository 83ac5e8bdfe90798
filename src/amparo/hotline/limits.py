"""How many reports one client of the public report page may send: a sliding window per client,
in memory, in each worker process.

Clients are told apart by address, but no address is kept: the key is a SHA-256 of the
address under a salt drawn when the process starts (an IPv6 client counts by its /64, the
network a single home or phone usually gets). Each network around a client (its IPv4 /24, its
IPv6 /48) has a window too, ``NETWORK_FACTOR`` times the client's rate, so that one holder of
many addresses cannot multiply its allowance without end.

Memory is bounded: at most ``max_clients`` keys per table. A key whose window has passed is
forgotten when room is needed; a key whose window is still open is never forgotten (that would
reset its limit). While a table is full of open windows, every new key counts against one
shared overflow window of the same rate: a flood of new addresses is limited as one client.

:meth:`ClientLimiter.take` checks and counts a hit in one step (concurrent requests cannot
all pass a check before any is counted); :meth:`ClientLimiter.give_back` returns a hit whose
report was refused, so that correcting a mistyped URL does not use up the allowance.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import secrets
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

from amparo.clock import Monotonic, monotonic
from amparo.config import Settings
from amparo.errors import ConfigError, RateLimitedError

MAX_CLIENTS = 100_000
NETWORK_FACTOR = 10
"""A network (IPv4 /24, IPv6 /48) may send this many times a single client's reports."""
_OVERFLOW = b"overflow"


@dataclass(frozen=True)
class Rate:
    """``count`` reports per ``seconds``, as ``report_rate_limit`` writes it: ``"5/600"``."""

    count: int
    seconds: float

    @classmethod
    def parse(cls, spec: str) -> Rate:
        count, sep, seconds = spec.strip().partition("/")
        try:
            rate = cls(int(count), float(seconds)) if sep else None
        except ValueError:
            rate = None
        if rate is None or rate.count < 1 or not (0 < rate.seconds < math.inf):
            raise ConfigError(
                f"report_rate_limit {spec!r} is not COUNT/SECONDS",
                hint='e.g. "5/600": five reports per client in ten minutes',
            )
        return rate


def client_key(address: str | None) -> str:
    """What identifies a client: its IPv4 address, the /64 of an IPv6 address, or the text
    the server gave (a test client's name); ``"unknown"`` when there is none."""
    return _keys(address)[0]


def network_key(address: str | None) -> str:
    """The network a client belongs to: the /24 of an IPv4 address, the /48 of an IPv6
    address, else the client's own key."""
    return _keys(address)[1]


def _keys(address: str | None) -> tuple[str, str]:
    if not address:
        return "unknown", "unknown"
    try:
        parsed = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address[:200], address[:200]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            parsed = parsed.ipv4_mapped
        else:
            return (
                str(ipaddress.IPv6Network((parsed, 64), strict=False)),
                str(ipaddress.IPv6Network((parsed, 48), strict=False)),
            )
    return str(parsed), str(ipaddress.IPv4Network((parsed, 24), strict=False))


@dataclass(frozen=True)
class Hit:
    """One counted hit, as :meth:`ClientLimiter.take` counted it: the window of the client
    (or the overflow window) and of its network, and when."""

    client: bytes
    network: bytes
    at: float


class _Windows:
    """Sliding windows of ``rate`` by key, at most ``max_keys`` of them, plus the overflow
    window that new keys share while the table is full of open windows. Not locked: the
    :class:`ClientLimiter` holding it is."""

    def __init__(self, rate: Rate, max_keys: int) -> None:
        self.rate = rate
        self.max_keys = max(1, max_keys)
        # Ordered by latest hit: windows that have passed are at the front.
        self.hits: OrderedDict[bytes, deque[float]] = OrderedDict()
        self.overflow: deque[float] = deque(maxlen=rate.count)

    def slot(self, key: bytes, now: float) -> bytes:
        """The window ``key`` counts in: its own, or the overflow window when there is no
        room for it."""
        if key in self.hits:
            return key
        start = now - self.rate.seconds
        while self.hits:
            oldest = next(iter(self.hits.values()))
            if oldest and oldest[-1] > start:
                break  # still open: never forgotten
            self.hits.popitem(last=False)
        return key if len(self.hits) < self.max_keys else _OVERFLOW

    def _window(self, slot: bytes) -> deque[float] | None:
        return self.overflow if slot == _OVERFLOW else self.hits.get(slot)

    def wait(self, slot: bytes, now: float) -> float | None:
        """Seconds until ``slot`` may be hit again, or None when it may be now."""
        hits = self._window(slot)
        if not hits:
            return None
        start = now - self.rate.seconds
        while hits and hits[0] <= start:
            hits.popleft()
        if len(hits) < self.rate.count:
            return None
        return max(1.0, hits[0] + self.rate.seconds - now)

    def record(self, slot: bytes, now: float) -> None:
        if slot == _OVERFLOW:
            self.overflow.append(now)
            return
        hits = self.hits.get(slot)
        if hits is None:
            hits = self.hits[slot] = deque(maxlen=self.rate.count)
        else:
            self.hits.move_to_end(slot)
        hits.append(now)

    def remove(self, slot: bytes, at: float) -> None:
        hits = self._window(slot)
        if hits is not None and at in hits:
            hits.remove(at)
            if not hits and slot != _OVERFLOW:
                del self.hits[slot]


class ClientLimiter:
    """At most ``rate.count`` hits per client in any ``rate.seconds`` (a sliding window), and
    ``NETWORK_FACTOR`` times that per network around it."""

    def __init__(
        self,
        rate: Rate,
        *,
        clock: Monotonic = monotonic,
        max_clients: int = MAX_CLIENTS,
        salt: bytes | None = None,
    ) -> None:
        self.rate = rate
        self.clock = clock
        self.max_clients = max(1, max_clients)
        self._salt = salt if salt is not None else secrets.token_bytes(32)
        self._clients = _Windows(rate, self.max_clients)
        self._networks = _Windows(Rate(rate.count * NETWORK_FACTOR, rate.seconds), self.max_clients)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Monotonic = monotonic) -> ClientLimiter:
        return cls(Rate.parse(settings.report_rate_limit), clock=clock)

    @property
    def _hits(self) -> OrderedDict[bytes, deque[float]]:
        """The clients' windows, by salted digest."""
        return self._clients.hits

    def _digest(self, kind: bytes, key: str) -> bytes:
        return hashlib.sha256(self._salt + kind + key.encode()).digest()

    def check(self, client: str | None) -> None:
        """Raise :class:`~amparo.errors.RateLimitedError` when ``client`` (its address) has
        used up its reports in the window; count nothing."""
        self._take(client, record=False)

    def take(self, client: str | None) -> Hit:
        """Count one report by ``client`` and return the hit (for :meth:`give_back`), or raise
        as :meth:`check` (nothing counted). The check and the count are one step."""
        hit = self._take(client, record=True)
        assert hit is not None
        return hit

    def hit(self, client: str | None) -> None:
        """Count one report by ``client``, or raise as :meth:`check` (nothing counted)."""
        self.take(client)

    def give_back(self, hit: Hit) -> None:
        """Uncount ``hit`` (its report was refused, not recorded)."""
        with self._lock:
            self._clients.remove(hit.client, hit.at)
            self._networks.remove(hit.network, hit.at)

    def _take(self, client: str | None, *, record: bool) -> Hit | None:
        own, network = _keys(client)
        now = self.clock()
        with self._lock:
            slots = (
                self._clients.slot(self._digest(b"client:", own), now),
                self._networks.slot(self._digest(b"network:", network), now),
            )
            waits = [
                wait
                for windows, slot in zip((self._clients, self._networks), slots, strict=True)
                if (wait := windows.wait(slot, now)) is not None
            ]
            if waits:
                raise RateLimitedError(
                    "too many reports from this connection",
                    retry_after=math.ceil(max(waits)),
                    hint="please wait a few minutes before sending another report",
                )
            if not record:
                return None
            self._clients.record(slots[0], now)
            self._networks.record(slots[1], now)
            return Hit(slots[0], slots[1], now)

    def __len__(self) -> int:
        return len(self._clients.hits)


__all__ = [
    "MAX_CLIENTS",
    "NETWORK_FACTOR",
    "ClientLimiter",
    "Hit",
    "Rate",
    "client_key",
    "network_key",
]
