"""Who is calling and what they may do: the key check, scope check and rate limit that every
route (but /healthz) goes through, as a FastAPI dependency."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request

from amparo.api.service import Service, get_service
from amparo.errors import DatabaseNeededError, PermissionDeniedError, RateLimitedError
from amparo.keys import ApiKey

# Which scopes each kind of operation needs (admin always passes).
HASH = ("hasher", "matcher", "curator", "reviewer")
MATCH = ("matcher", "curator")
CURATE = ("curator",)
READ_BANKS = ("curator", "auditor")
AUDIT = ("auditor",)
READ_REPORTS = ("reviewer", "auditor")
BUILD_REPORTS = ("reviewer",)
SUBMIT_REPORTS = ("admin",)
EVIDENCE_META = ("reviewer", "auditor")
"""Evidence metadata (hashes, sources, retention): never content."""
EVIDENCE_CONTENT = ("evidence-reader",)
"""Decrypted evidence content, unshielded (and admin); every read is audit-logged. Not for
plain reviewer keys: they see media blurred, and clear only through a counted reveal."""
ADMIN = ("admin",)
ANY = ("admin", "curator", "matcher", "hasher", "reviewer", "auditor", "evidence-reader")


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return request.headers.get("x-api-key") or None


def authenticate(
    request: Request, service: Service, scopes: tuple[str, ...], *, cached_only: bool = False
) -> ApiKey:
    """The caller's key if it holds one of ``scopes`` (and is within its rate limit).
    ``cached_only``: from the key cache only, else DatabaseNeededError (see :func:`requires`)."""
    key = service.keys.authenticate(presented_key(request), cached_only=cached_only)
    request.state.key_name = key.name
    if not key.allows(*scopes):
        raise PermissionDeniedError(
            f"key {key.name!r} may not do this",
            hint="this needs a key with scope " + " or ".join(scopes),
        )
    try:
        service.limiter.check(key)
        if "matcher" in scopes:
            service.probes.check(key.id)
    except RateLimitedError:
        service.metrics.rate_limited.inc()
        raise
    return key


def requires(*scopes: str) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that returns the caller's key if it holds one of ``scopes``."""

    # Async: a key in the cache (api_key_cache_seconds) is checked on the event loop instead
    # of costing a thread-pool hop on every request; one that must be read from the database
    # is checked in a thread, for at most lookup_database_timeout_seconds (then 503), so a
    # slow database never stalls the worker's other requests.
    async def dependency(request: Request, service: Service = Depends(get_service)) -> ApiKey:
        try:
            return authenticate(request, service, scopes, cached_only=True)
        except DatabaseNeededError:
            return await service.off_loop(authenticate, request, service, scopes)

    return dependency
