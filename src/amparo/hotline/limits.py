"""How many reports one client of the public report page may send: a sliding window per client,
in memory, in each worker process.

Clients are told apart by address, but no address is kept: the key is a SHA-256 of the
address under a salt drawn when the process starts (an IPv6 client counts by its /64, the
network a single home or phone usually gets). Memory is bounded: at most ``max_clients``
keys, and a key whose window has passed is forgotten as soon as room is needed (then the
least recently seen one goes first).
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
    if not address:
        return "unknown"
    try:
        parsed = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address[:200]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class ClientLimiter:
    """At most ``rate.count`` hits per client in any ``rate.seconds`` (a sliding window)."""

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
        self._hits: OrderedDict[bytes, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Monotonic = monotonic) -> ClientLimiter:
        return cls(Rate.parse(settings.report_rate_limit), clock=clock)

    def _key(self, client: str) -> bytes:
        return hashlib.sha256(self._salt + client_key(client).encode()).digest()

    def check(self, client: str | None) -> None:
        """Raise :class:`~amparo.errors.RateLimitedError` when ``client`` (its address) has
        used up its reports in the window; count nothing."""
        self._count(client, record=False)

    def hit(self, client: str | None) -> None:
        """Count one report by ``client``, or raise as :meth:`check` (nothing counted)."""
        self._count(client, record=True)

    def _count(self, client: str | None, *, record: bool) -> None:
        key = self._key(client or "")
        now = self.clock()
        start = now - self.rate.seconds
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if not record:
                    return
                self._make_room(start)
                hits = self._hits[key] = deque(maxlen=self.rate.count)
            else:
                self._hits.move_to_end(key)
            while hits and hits[0] <= start:
                hits.popleft()
            if len(hits) >= self.rate.count:
                retry_after = max(1.0, hits[0] + self.rate.seconds - now)
                raise RateLimitedError(
                    "too many reports from this connection",
                    retry_after=math.ceil(retry_after),
                    hint="please wait a few minutes before sending another report",
                )
            if record:
                hits.append(now)

    def _make_room(self, start: float) -> None:
        # Keys are ordered by their latest hit: those whose window has passed are at the front.
        while self._hits:
            oldest = next(iter(self._hits.values()))
            if oldest and oldest[-1] > start and len(self._hits) < self.max_clients:
                return
            self._hits.popitem(last=False)

    def __len__(self) -> int:
        return len(self._hits)


__all__ = ["MAX_CLIENTS", "ClientLimiter", "Rate", "client_key"]
