"""API keys: stored hashed, shown once, checked in constant time; scopes; token buckets."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text

from amparo.app import Amparo
from amparo.config import Settings
from amparo.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    DatabaseNeededError,
    InputError,
    RateLimitedError,
)
from amparo.keys import (
    ApiKey,
    KeyService,
    RateLimiter,
    parse_lookup,
    parse_rate_limits,
)
from clocks import ManualMonotonic


def test_keys_are_random_stored_hashed_and_checked(sqlite_settings: Settings) -> None:
    with Amparo(sqlite_settings) as amparo:
        keys = KeyService(amparo.store, cache_seconds=0)
        new = keys.create("scanner", ["matcher", "hasher"], actor="t")
        assert new.secret.startswith("amp_") and len(new.secret) > 50
        assert parse_lookup(new.secret) == new.key.lookup
        other = keys.create("other", ["auditor"], actor="t")
        assert other.secret != new.secret
        with amparo.store.engine.connect() as conn:
            stored = conn.execute(text("SELECT key_hash FROM api_keys")).scalars().all()
        assert new.secret not in " ".join(stored)
        assert hashlib.sha256(new.secret.encode()).hexdigest() in stored

        key = keys.authenticate(new.secret)
        assert key.name == "scanner" and key.scopes == {"matcher", "hasher"}
        assert key.allows("matcher") and not key.allows("curator")
        assert key.actor == "key:scanner"
        for bad in (None, "", "amp_", new.secret + "x", new.secret[:-1], "Bearer x" * 40):
            with pytest.raises(AuthenticationError):
                keys.authenticate(bad)
        keys.revoke("scanner", actor="t")
        with pytest.raises(AuthenticationError):
            keys.authenticate(new.secret)
        with pytest.raises(ConflictError):
            keys.create("other", ["auditor"], actor="t")
        with pytest.raises(InputError):
            keys.create("x", ["superuser"], actor="t")
        with pytest.raises(InputError):
            keys.create("bad name", ["matcher"], actor="t")
        actions = [a.action for a in amparo.audit.entries()]
        assert actions[:3] == ["key.revoke", "key.create", "key.create"]


def test_cached_only_answers_from_the_cache_or_says_it_needs_the_database(
    sqlite_settings: Settings,
) -> None:
    # What a caller on an event loop uses: it never reads the database itself.
    clock = ManualMonotonic()
    with Amparo(sqlite_settings) as amparo:
        keys = KeyService(amparo.store, cache_seconds=60, clock=clock)
        secret = keys.create("scanner", ["matcher"], actor="t").secret
        with pytest.raises(DatabaseNeededError):
            keys.authenticate(secret, cached_only=True)
        assert keys.authenticate(secret).name == "scanner"  # read, then cached
        assert keys.authenticate(secret, cached_only=True).name == "scanner"
        with pytest.raises(DatabaseNeededError):
            keys.authenticate("amp_unknown", cached_only=True)
        with pytest.raises(AuthenticationError):
            keys.authenticate("amp_unknown")
        with pytest.raises(AuthenticationError):  # an unknown key is cached as unknown
            keys.authenticate("amp_unknown", cached_only=True)
        clock.advance(61)
        with pytest.raises(DatabaseNeededError):
            keys.authenticate(secret, cached_only=True)


def test_admin_allows_everything() -> None:
    admin = ApiKey(1, "root", frozenset({"admin"}))
    assert admin.allows("curator") and admin.allows("auditor")


def test_token_bucket_bursts_refills_and_says_when() -> None:
    clock = ManualMonotonic()
    limiter = RateLimiter(parse_rate_limits("matcher=2:4"), clock=clock)
    key = ApiKey(1, "m", frozenset({"matcher"}))
    for _ in range(4):
        limiter.check(key)
    with pytest.raises(RateLimitedError) as err:
        limiter.check(key)
    assert err.value.retry_after == pytest.approx(0.5)
    clock.advance(0.5)
    limiter.check(key)
    clock.advance(10)
    limiter.check(key, cost=4)
    with pytest.raises(InputError):
        limiter.check(key, cost=5)
    # A batch route has already taken the request's own token: a batch one over the burst is
    # refused outright, not told to wait for tokens it can never have.
    clock.advance(10)
    limiter.check(key)
    with pytest.raises(InputError):
        limiter.check(key, cost=4, batch=5)
    limiter.check(key, cost=3, batch=4)


def test_a_refund_gives_back_a_token_up_to_the_burst() -> None:
    """The raw-lookup lane charges a key, then hands some lookups to the full route, which
    charges again: the lane refunds its token, so such a lookup costs one, not two."""
    clock = ManualMonotonic()
    limiter = RateLimiter(parse_rate_limits("matcher=2:4"), clock=clock)
    key = ApiKey(1, "m", frozenset({"matcher"}))
    for _ in range(4):
        limiter.check(key)
    limiter.refund(key)
    limiter.check(key)  # the refunded token
    with pytest.raises(RateLimitedError):
        limiter.check(key)
    for _ in range(10):
        limiter.refund(key)  # never past the burst
    for _ in range(4):
        limiter.check(key)
    with pytest.raises(RateLimitedError):
        limiter.check(key)
    limiter.refund(ApiKey(2, "never charged", frozenset({"matcher"})))  # nothing to give back


def test_limits_by_scope_and_by_key() -> None:
    limiter = RateLimiter(parse_rate_limits("matcher=50:100,default=5:5"))
    assert limiter.limit_for(ApiKey(1, "m", frozenset({"matcher"}))) == (50, 100)
    assert limiter.limit_for(ApiKey(2, "h", frozenset({"hasher"}))) == (5, 5)
    assert limiter.limit_for(ApiKey(3, "c", frozenset({"curator"}))) is None
    own = ApiKey(4, "bench", frozenset({"matcher"}), rate_per_second=5000, burst=10000)
    assert limiter.limit_for(own) == (5000, 10000)


@pytest.mark.parametrize("spec", ["matcher", "matcher=x", "nobody=1:2", "matcher=0:1", "m=1:0"])
def test_bad_rate_specs(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_rate_limits(spec)
