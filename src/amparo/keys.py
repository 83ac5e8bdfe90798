"""API keys and what they may do: scopes, creation, checking, and per-key rate limits.

A key looks like ``amp_<lookup>_<secret>``: 32 random bytes in all, shown once at creation.
Only its SHA-256 is stored. Checking a key finds the row by its public lookup id and compares
hashes in constant time, so response timing says nothing about how much of a key was right.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from amparo.clock import Monotonic, monotonic
from amparo.config import DEFAULTS
from amparo.errors import (
    AuthenticationError,
    ConfigError,
    DatabaseNeededError,
    InputError,
    RateLimitedError,
)
from amparo.names import validate_name
from amparo.store import Store
from amparo.store.keys import KeyStore, StoredKey

KEY_PREFIX = "amp_"
_LOOKUP_CHARS = 12

SCOPES: dict[str, str] = {
    "admin": "everything, including every other scope",
    "curator": "manage banks and their entries; read, import and export hash lists",
    "matcher": "match media and hashes; learns bank, entry id, category and a distance band only",
    "hasher": "hash media and compare hashes; no access to banks",
    "reviewer": "review matches (later issues); hash and compare",
    "auditor": "read the audit log, bank metadata and index status; no hash lists",
    "distance": "see exact match distances in lookup answers (matchers otherwise get a band)",
    "evidence-reader": "download preserved evidence in the clear (GET /v1/evidence/{id}/"
    "content; every read audit-logged); reviewers see media only blurred, or revealed",
    "partner": "read the federation feeds granted to it and post opinions on them; nothing else",
    "reporter": "report URLs to the hotline (POST /v1/url-reports) and read back the status of "
    "the reports it filed; nothing else (partner hotlines, platforms)",
}


@dataclass(frozen=True)
class ApiKey:
    """An authenticated caller."""

    id: int
    name: str
    scopes: frozenset[str]
    rate_per_second: float | None = None
    burst: int | None = None

    @property
    def actor(self) -> str:
        """How the audit log names changes made with this key."""
        return f"key:{self.name}"

    def allows(self, *scopes: str) -> bool:
        """Whether the key holds ``admin`` or any of ``scopes``."""
        return "admin" in self.scopes or bool(self.scopes.intersection(scopes))


@dataclass(frozen=True)
class NewKey:
    """A freshly created key: ``secret`` is the only copy of the key there will ever be."""

    secret: str
    key: StoredKey


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def generate_key() -> tuple[str, str]:
    """Return ``(secret, lookup)`` for a new key."""
    token = secrets.token_urlsafe(32)
    lookup = secrets.token_hex(_LOOKUP_CHARS // 2)
    return f"{KEY_PREFIX}{lookup}_{token}", lookup


def parse_lookup(secret: str) -> str | None:
    """The lookup id of a presented key, or None when it is not shaped like an Amparo key."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    lookup, sep, _ = secret[len(KEY_PREFIX) :].partition("_")
    if not sep or len(lookup) != _LOOKUP_CHARS:
        return None
    return lookup


def validate_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for scope in scopes:
        name = scope.strip().lower()
        if name not in SCOPES:
            raise InputError(
                f"unknown scope {scope!r}", hint="scopes: " + ", ".join(sorted(SCOPES))
            )
        if name not in out:
            out.append(name)
    if not out:
        raise InputError("a key needs at least one scope", hint="e.g. --scope matcher")
    return tuple(out)


class KeyService:
    """Creates, lists, revokes and checks keys. Checked keys are cached for ``cache_seconds``
    so a busy service does not read the database on every request; a revoked key stops
    working when its cache entry expires."""

    def __init__(
        self,
        store: Store,
        *,
        cache_seconds: float = DEFAULTS.api_key_cache_seconds,
        clock: Monotonic = monotonic,
    ) -> None:
        self.keys = KeyStore(store)
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def create(
        self,
        name: str,
        scopes: Iterable[str],
        *,
        rate_per_second: float | None = None,
        burst: int | None = None,
        actor: str,
    ) -> NewKey:
        validate_name(name, "key")
        if rate_per_second is not None and rate_per_second <= 0:
            raise InputError("--rate must be positive")
        if burst is not None and burst < 1:
            raise InputError("--burst must be at least 1")
        secret, lookup = generate_key()
        stored = self.keys.add(
            name=name,
            lookup=lookup,
            key_hash=hash_key(secret),
            scopes=validate_scopes(scopes),
            rate_per_second=rate_per_second,
            burst=burst,
            actor=actor,
        )
        return NewKey(secret=secret, key=stored)

    def list(self) -> list[StoredKey]:
        return self.keys.list()

    def revoke(self, name: str, *, actor: str) -> StoredKey:
        key = self.keys.revoke(name, actor=actor)
        with self._lock:
            self._cache.clear()
        return key

    def authenticate(self, secret: str | None, *, cached_only: bool = False) -> ApiKey:
        """The key behind ``secret``, or AuthenticationError. ``cached_only``: answer from
        the cache or raise DatabaseNeededError (a caller on an event loop then checks the
        key in a thread, so a slow database stalls no other request)."""
        if not secret:
            raise AuthenticationError(
                "this endpoint needs an API key",
                hint="send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'; "
                "create one with `amparo keys create NAME --scope matcher`",
            )
        digest = hash_key(secret)
        now = self.clock()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self.cache_seconds:
            key = cached[1]
        elif cached_only:
            raise DatabaseNeededError(
                "the key is not in the cache", hint="check it where the database may be read"
            )
        else:
            key = self._check(secret, digest)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now, key)
        if key is None:
            raise AuthenticationError(
                "the API key is unknown or revoked", hint="ask an admin for a valid key"
            )
        return key

    def _check(self, secret: str, digest: str) -> ApiKey | None:
        lookup = parse_lookup(secret)
        stored = self.keys.by_lookup(lookup) if lookup else None
        # Compare even when nothing was found, so both paths cost the same.
        expected = stored.key_hash if stored is not None else hash_key("")
        if not hmac.compare_digest(expected, digest) or stored is None or stored.revoked:
            return None
        return ApiKey(
            id=stored.id,
            name=stored.name,
            scopes=frozenset(stored.scopes),
            rate_per_second=stored.rate_per_second,
            burst=stored.burst,
        )


# -- rate limits ------------------------------------------------------------------------------


def parse_rate_limits(spec: str) -> dict[str, tuple[float, int]]:
    """Parse ``"matcher=50:100,default=20:40"`` into ``{scope: (per_second, burst)}``."""
    out: dict[str, tuple[float, int]] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        scope, eq, value = part.partition("=")
        rate, colon, burst = value.partition(":")
        try:
            per_second = float(rate)
            size = int(burst) if colon else max(1, math.ceil(per_second))
        except ValueError:
            per_second, size = -1.0, -1
        scope = scope.strip().lower()
        if not eq or per_second <= 0 or size < 1 or (scope not in SCOPES and scope != "default"):
            raise ConfigError(
                f"api_rate_limits: cannot read {part!r}",
                hint="write scope=per_second:burst, e.g. matcher=50:100,default=20:40",
            )
        out[scope] = (per_second, size)
    return out


class _Bucket:
    """One key's tokens: ``tokens`` as of ``updated`` (a reading of the limiter's clock)."""

    __slots__ = ("rate", "size", "tokens", "updated")

    def __init__(self, rate: float, size: int, now: float) -> None:
        self.rate, self.size, self.tokens, self.updated = rate, size, float(size), now


class RateLimiter:
    """Token buckets per key, in this process. A key's own rate wins; otherwise the most
    generous limit among its scopes; admin and curator keys are unlimited unless named.
    Buckets refill by ``clock`` (monotonic seconds; tests pass one they move)."""

    UNLIMITED_SCOPES = frozenset({"admin", "curator"})

    def __init__(self, limits: dict[str, tuple[float, int]], clock: Monotonic = monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self._lock = threading.Lock()

    def limit_for(self, key: ApiKey) -> tuple[float, int] | None:
        if key.rate_per_second is not None:
            rate = key.rate_per_second
            return rate, key.burst or max(1, math.ceil(rate))
        named = [self.limits[s] for s in key.scopes if s in self.limits]
        if named:
            return max(named)
        if key.scopes & self.UNLIMITED_SCOPES:
            return None
        return self.limits.get("default")

    def refund(self, key: ApiKey, cost: int = 1) -> None:
        """Give back ``cost`` tokens taken for a request that another path then serves and
        charges (the raw-lookup lane handing a lookup to the full route)."""
        with self._lock:
            bucket = self._buckets.get(key.id)
            if bucket is not None:
                bucket.tokens = min(bucket.size, bucket.tokens + cost)

    def check(self, key: ApiKey, cost: int = 1, *, batch: int | None = None) -> None:
        """Take ``cost`` tokens for ``key`` or raise RateLimitedError with the wait needed.
        Batch routes charge one token an item, so batching does not multiply a key's rate;
        ``batch`` is the whole batch's size when part of it was charged already (the request's
        own token), so a batch that could never pass is refused as such, not made to wait."""
        limit = self.limit_for(key)
        if limit is None:
            return
        rate, size = limit
        items = cost if batch is None else batch
        if items > size:
            raise InputError(
                f"a batch of {items} items is more than key {key.name!r} may send at once ({size})",
                hint="send smaller batches",
            )
        if cost <= 0:
            return
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key.id)
            if bucket is None or bucket.rate != rate or bucket.size != size:
                bucket = self._buckets[key.id] = _Bucket(rate, size, now)
            bucket.tokens = min(bucket.size, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return
            wait = (cost - bucket.tokens) / rate
        raise RateLimitedError(
            f"key {key.name!r} is over its rate limit of {rate:g} requests a second",
            retry_after=wait,
            hint="retry after the Retry-After header's seconds; batch lookups or ask an "
            "admin for a higher limit",
        )
