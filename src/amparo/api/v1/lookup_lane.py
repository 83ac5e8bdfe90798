"""``GET /v1/lookup`` without the framework's routing, validation and response models: the
plain case of the busiest v1 route, answered from memory on the event loop. The answer is
byte for byte what :func:`amparo.api.v1.matching.lookup` sends (a test compares them)."""

from __future__ import annotations

import json
from typing import Any, get_args
from urllib.parse import parse_qs

from fastapi import Request
from starlette.types import Scope

from amparo.api.auth import MATCH, authenticate
from amparo.api.middleware import FastLane
from amparo.api.schemas import ActionTakenOut, SignalTypeName
from amparo.api.service import Service
from amparo.api.v1.matching import SourceParams, _lookup_in_memory
from amparo.errors import AmparoError
from amparo.matching import Match
from amparo.probes import distance_band, sees_distance

_TYPES = frozenset(get_args(SignalTypeName))
_LIMITS = {"signal_type": 20, "signal": 200, "account_id": 200, "upload_id": 200, "file_name": 500}
"""The parameters the lane answers (each at most once) and their longest values; anything
else (banks chosen, errors) goes to the full route."""


def _match_json(m: Match, exact: bool) -> dict[str, Any]:
    """``MatchOut.of(m)`` as the route serialises it (same keys, same order)."""
    return {
        "bank": m.bank,
        "entry_id": m.entry_id,
        "signal_type": m.signal_type,
        "distance": m.distance if exact else None,
        "band": distance_band(m.distance),
        "category": m.category,
        "tags": list(m.tags),
        "transform": m.transform,
        "path": m.path,
        "variant": m.variant,
        "video": m.video.to_json() if m.video is not None else None,
    }


def fast_lookup(service: Service) -> FastLane:
    """The lane for ``("GET", "/v1/lookup")``; None hands a request to the full route."""

    async def lane(scope: Scope) -> bytes | None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        if not query.keys() <= _LIMITS.keys():
            return None
        if any(len(v) != 1 or len(v[0]) > _LIMITS[k] for k, v in query.items()):
            return None
        signal_type, signal = query.get("signal_type", [""])[0], query.get("signal", [""])[0]
        if signal_type not in _TYPES or not signal:
            return None
        checks = service.amparo.checks
        if not (service.amparo.matcher.answers_from_memory() and checks.rules_known_inactive()):
            return None  # before authenticating: a key's rate limit is charged once
        where = SourceParams(
            account_id=query.get("account_id", [None])[0],
            upload_id=query.get("upload_id", [None])[0],
            file_name=query.get("file_name", [None])[0],
        )
        try:
            key = authenticate(Request(scope), service, MATCH, cached_only=True)
            found = _lookup_in_memory(service, key, signal_type, signal, None, where.source())
        except AmparoError:
            return None
        if found is None:
            return None
        exact = sees_distance(key)
        body = {
            "matches": [_match_json(m, exact) for m in found[0]],
            "actions": [ActionTakenOut(**a.to_json()).model_dump(mode="json") for a in found[1]],
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    return lane
