"""HMA ``/m``: raw lookups, lookups by signal, URL or upload, hash comparison, index status.

Lookups answer ``{bank: [{"bank_content_id": id, "distance": "n"}]}`` (HMA's shape: the
distance is a string). Unlike HMA's raw_lookup, disabled entries and banks are never reported.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.types import Scope

from amparo.api.auth import ANY, HASH, MATCH, authenticate, requires
from amparo.api.hma.common import (
    UPLOAD_BODY,
    chosen_signals,
    media_from_form,
    media_from_url,
    signal_name,
    signal_types,
)
from amparo.api.service import Service, get_service
from amparo.errors import AmparoError, DatabaseNeededError, InputError
from amparo.events import Source
from amparo.hashing import MediaHashes
from amparo.indexing import memory_only
from amparo.keys import ApiKey
from amparo.matching import Match, default_threshold
from amparo.probes import hma_distance, sees_distance
from amparo.signals import get_signal_type

router = APIRouter(prefix="/m", tags=["HMA: matching"])

ByBank = dict[str, list[dict[str, Any]]]
BanksParam = Annotated[
    str | None, Query(max_length=2000, description="Comma-separated bank names.")
]


def _banks(service: Service, banks: str | None) -> list[str] | None:
    """Requested banks that exist (HMA ignores unknown names); None means all."""
    if not banks:
        return None
    known = {b.name for b in service.amparo.banks.list(with_counts=False)}
    return [b for b in (x.strip() for x in banks.split(",")) if b in known]


def _match(
    service: Service, key: ApiKey, signal: str, signal_type: str, banks: str | None
) -> list[Match]:
    """Look one signal up; a matched ``sha256`` runs the action rules, as on ``/v1``."""
    chosen = _banks(service, banks)
    if chosen is not None and not chosen:
        return []
    query = (signal_name(signal_type), signal)
    check = service.amparo.checks.check_signals(
        [query], source=Source(kind="api"), actor=key.actor, banks=chosen
    )
    # Counted once answered: a lookup refused on the event loop runs again in a thread.
    service.metrics.lookups.labels("signal").inc()
    matches = check.results[0]
    service.count_matches(matches)
    service.screen(key, [query], [matches])
    return matches


def _in_memory(service: Service, banks: str | None) -> bool:
    """Whether a lookup is likely all in memory (no database read, and the cached rule set
    says no rule is enabled: a lookup then takes well under a millisecond, and a thread hop
    costs more than it). When the rule cache is due for a re-read, the lookup that re-reads
    it goes to the thread pool."""
    checks = service.amparo.checks
    return (
        banks is None
        and service.amparo.matcher.answers_from_memory()
        and checks.rules_known_inactive()
    )


def _match_in_memory(
    service: Service, key: ApiKey, signal: str, signal_type: str, banks: str | None
) -> list[Match] | None:
    """``_match`` on the event loop, from memory only; None when it needs the database."""
    try:
        with memory_only():
            return _match(service, key, signal, signal_type, banks)
    except DatabaseNeededError:
        return None


async def _match_soon(
    service: Service, key: ApiKey, signal: str, signal_type: str, banks: str | None
) -> list[Match]:
    """``_match`` on the event loop when it is all in memory, else in the thread pool with
    a deadline (it reads the database, or runs the action rules)."""
    if _in_memory(service, banks):
        found = _match_in_memory(service, key, signal, signal_type, banks)
        if found is not None:
            return found
    return await service.off_loop(_match, service, key, signal, signal_type, banks)


_TRUE = {"1", "true", "yes", "on", "t", "y"}
_FALSE = {"0", "false", "no", "off", "f", "n"}


def fast_raw_lookup(service: Service) -> Callable[[Scope], Awaitable[bytes | None]]:
    """``GET /m/raw_lookup`` without the framework's routing, dependency and response
    machinery (the busiest route of a matching service). It answers only the plain case: the
    two parameters (and ``include_distance``) once each, a key allowed to match, an index that
    is fresh; anything else (errors too) goes to :func:`raw_lookup`, which answers it fully."""

    async def lane(scope: Scope) -> bytes | None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        if not query.keys() <= {"signal", "signal_type", "include_distance"}:
            return None
        if any(len(values) != 1 for values in query.values()):
            return None
        signal, signal_type = query.get("signal", [""])[0], query.get("signal_type", [""])[0]
        flag = query.get("include_distance", ["false"])[0].lower()
        if not signal or not signal_type or len(signal) > 200 or len(signal_type) > 20:
            return None
        if flag not in _TRUE | _FALSE or not _in_memory(service, None):
            return None
        try:
            key = authenticate(Request(scope), service, MATCH, cached_only=True)
        except AmparoError:  # DatabaseNeededError among them: the full route uses a thread
            return None
        try:
            with memory_only():
                matches = _match(service, key, signal, signal_type, None)
        except AmparoError:
            service.limiter.refund(key)  # the full route answers it, and charges the key
            return None
        found: list[Any] = (
            _distances(matches, sees_distance(key))
            if flag in _TRUE
            else [m.entry_id for m in matches]
        )
        return json.dumps({"matches": found}, separators=(",", ":")).encode()

    return lane


def _distances(matches: list[Match], exact: bool) -> list[dict[str, Any]]:
    """HMA's ``{"bank_content_id", "distance"}`` items; matchers get a band's ceiling."""
    return [
        {"bank_content_id": m.entry_id, "distance": hma_distance(m.distance, exact)}
        for m in matches
    ]


def _by_bank(matches: list[Match], exact: bool) -> ByBank:
    out: ByBank = {}
    for m in matches:
        out.setdefault(m.bank, []).extend(_distances([m], exact))
    return out


def _lookup_all(
    service: Service,
    key: ApiKey,
    hashes: dict[str, str],
    banks: str | None,
    content: tuple[MediaHashes, bytes | None, Source] | None = None,
) -> dict[str, ByBank]:
    """Every signal of one piece of content, looked up in one matcher call. With the
    ``content`` (its hashes, bytes and source), a match runs the action rules on it as
    ``/v1/match`` does (the content named by its sha256, whichever types were asked for)."""
    chosen = _banks(service, banks)
    if chosen is not None and not chosen:
        return {st: {} for st in hashes}
    service.metrics.lookups.labels("signal").inc()
    types = list(hashes)
    queries = [(signal_name(st), hashes[st]) for st in types]
    checks = service.amparo.checks
    results = checks.match_signals(queries, chosen, source=None)
    checks.count([[m for found in results for m in found]], "api")  # one content, counted once
    # The content's whole check (a second lookup) only when a rule may act on what matched.
    if content is not None and any(results) and checks.rules_active():
        media, data, source = content
        checks.check_media(
            media, source=source, actor=key.actor, banks=chosen, media=data, counted=True
        )
    for matches in results:
        service.count_matches(matches)
    service.screen(key, queries, results)
    exact = sees_distance(key)
    return {st: _by_bank(matches, exact) for st, matches in zip(types, results, strict=True)}


@router.get("/raw_lookup", response_model=dict[str, list[Any]], summary="Raw hash lookup")
async def raw_lookup(
    signal: Annotated[str, Query(max_length=200)],
    signal_type: Annotated[str, Query(max_length=20)],
    banks: BanksParam = None,
    include_distance: bool = False,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*MATCH)),
) -> dict[str, list[Any]]:
    matches = await _match_soon(service, key, signal, signal_type, banks)
    if include_distance:
        return {"matches": _distances(matches, sees_distance(key))}
    return {"matches": [m.entry_id for m in matches]}


@router.get("/lookup", response_model=dict[str, Any], summary="Look up a signal or a URL")
async def lookup_get(
    url: Annotated[str | None, Query(max_length=2048)] = None,
    content_type: Annotated[str | None, Query(max_length=20)] = None,
    types: Annotated[str | None, Query(max_length=200)] = None,
    signal: Annotated[str | None, Query(max_length=200)] = None,
    signal_type: Annotated[str | None, Query(max_length=20)] = None,
    banks: BanksParam = None,
    seed: Annotated[str | None, Query(max_length=200)] = None,
    bypass_coinflip: bool = False,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*MATCH)),
) -> dict[str, Any]:
    # seed and bypass_coinflip are accepted for compatibility: Amparo banks are on or off.
    if url:
        wanted = signal_types(types, content_type)
        media, data = await media_from_url(url, service, key)
        hashes = chosen_signals(media, wanted)
        content = (media, data, Source(kind="api", url=url))
        result = await run_in_threadpool(_lookup_all, service, key, hashes, banks, content)
        if signal_type is not None:
            return dict(result.get(signal_name(signal_type), {}))
        return dict(result)
    if not signal or not signal_type:
        raise InputError("either url or both signal and signal_type are required")
    matches = await _match_soon(service, key, signal, signal_type, banks)
    return dict(_by_bank(matches, sees_distance(key)))


@router.post(
    "/lookup",
    response_model=dict[str, Any],
    summary="Look up an uploaded file (form field 'photo')",
    openapi_extra=UPLOAD_BODY,
)
async def lookup_post(
    request: Request,
    banks: BanksParam = None,
    types: Annotated[str | None, Query(max_length=200)] = None,
    seed: Annotated[str | None, Query(max_length=200)] = None,
    bypass_coinflip: bool = False,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*MATCH)),
) -> dict[str, Any]:
    wanted = signal_types(types, None)
    keep = service.amparo.checks.rules_active()
    media, data = await media_from_form(request, service, keep=keep)
    content = (media, data, Source(kind="api"))
    hashes = chosen_signals(media, wanted)
    return dict(await run_in_threadpool(_lookup_all, service, key, hashes, banks, content))


@router.post("/compare", response_model=dict[str, Any], summary="Distance between hash pairs")
def compare(
    body: dict[str, list[str]],
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*HASH)),
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, pair in body.items():
        if len(pair) != 2:
            raise InputError(f"comparison hash list length for {name} must be exactly 2")
        st = get_signal_type(signal_name(name))
        distance = st.distance(st.normalize(pair[0]), st.normalize(pair[1]))
        threshold = default_threshold(st, service.settings)
        out[name] = [distance <= threshold, {"distance": distance}]
    return out


@router.get("/index/status", response_model=dict[str, Any], summary="Index status")
def index_status(
    signal_type: Annotated[str | None, Query(max_length=20)] = None,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*ANY)),
) -> dict[str, Any]:
    matcher = service.amparo.matcher
    names = ["pdq", "md5", "sha1", "sha256", "vpdq"]
    if signal_type is not None:
        if signal_name(signal_type) not in names:
            raise InputError(f"No such signal type '{signal_type}'")
        names = [signal_name(signal_type)]
    out: dict[str, Any] = {}
    present = matcher.checkpoint >= 0
    for name in names:
        in_index = get_signal_type(name).index_kind == "hamming"
        size = len(matcher.index) if in_index else service.amparo.banks.count_active(name)
        out[name] = {
            "present": present,
            "built_to": matcher.checkpoint if present else -1,
            "size": size,
        }
    return out
