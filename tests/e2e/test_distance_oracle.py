"""The distance oracle (issue: a matcher key recovered a bank's PDQ hash in 257 lookups by
flipping one bit at a time and reading the distance). Matchers now get a band, and the walk
itself is caught and throttled; curators still see exact distances."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from test_api_support import Api, make_keys

from amparo.api.app import create_app
from amparo.app import Amparo
from amparo.config import Settings

LookupFn = Callable[[str], int | None]


@pytest.fixture
def oracle_api(sqlite_settings: Settings) -> Iterator[Api]:
    # Rate limits out of the way: the attack is cheap under the default limits too, only slower.
    settings = replace(sqlite_settings, api_rate_limits="matcher=10000:10000,default=10000:10000")
    keys = make_keys(settings)
    with TestClient(create_app(settings)) as client:
        yield Api(client, settings, keys)


def _bank_hash(api: Api) -> str:
    secret = f"{random.Random(12).getrandbits(256):064x}"
    cur = api.as_("curator")
    api.client.post("/v1/banks", json={"name": "known"}, headers=cur)
    r = api.client.post(
        "/v1/banks/known/entries",
        json={"entries": [{"signal_type": "pdq", "signal": secret}]},
        headers=cur,
    )
    assert r.json()["added"] == 1
    return secret


def _attack(start: str, lookup: LookupFn) -> tuple[str, int]:
    """The published attack: from a query that matches, flip each bit and keep the flip when
    the reported distance falls. Returns the reconstruction and the lookups made."""
    query = int(start, 16)
    best = lookup(start)
    assert best is not None
    lookups = 1
    for bit in range(256):
        trial = f"{query ^ (1 << bit):064x}"
        distance = lookup(trial)
        lookups += 1
        if distance is not None and distance < best:
            query, best = int(trial, 16), distance
    return f"{query:064x}", lookups


def _raw_lookup(api: Api, who: str, refusals: list[str]) -> LookupFn:
    def lookup(signal: str) -> int | None:
        r = api.client.get(
            "/m/raw_lookup",
            params={"signal": signal, "signal_type": "pdq", "include_distance": "true"},
            headers=api.as_(who),
        )
        if r.status_code != 200:
            refusals.append(r.json()["error"]["code"])
            return None
        matches = r.json()["matches"]
        return int(matches[0]["distance"]) if matches else None

    return lookup


def _near(secret: str, bits: int) -> str:
    value = int(secret, 16)
    for bit in random.Random(5).sample(range(256), bits):
        value ^= 1 << bit
    return f"{value:064x}"


def test_a_matcher_key_cannot_reconstruct_a_bank_hash(oracle_api: Api) -> None:
    secret = _bank_hash(oracle_api)
    refusals: list[str] = []
    guess, _ = _attack(_near(secret, 12), _raw_lookup(oracle_api, "matcher", refusals))
    assert guess != secret
    assert "probe_suspected" in refusals
    # Once caught, the key's other lookups are refused for the cool-down too.
    r = oracle_api.client.post(
        "/v1/match/signals",
        json={"signals": [{"signal_type": "pdq", "signal": secret}]},
        headers=oracle_api.as_("matcher"),
    )
    assert r.status_code == 429 and r.json()["error"]["code"] == "probe_suspected"
    assert "Retry-After" in r.headers
    with Amparo(oracle_api.settings) as amparo:
        actions = [e.action for e in amparo.store.audit_log.entries(limit=50)]
    assert "probe.suspected" in actions
    metrics = oracle_api.client.get("/metrics", headers=oracle_api.as_("admin")).text
    assert "amparo_probe_alerts_total 1.0" in metrics


def test_curators_see_exact_distances_and_matchers_bands(oracle_api: Api) -> None:
    secret = _bank_hash(oracle_api)
    query = _near(secret, 3)
    for who, expected in (("curator", 3), ("matcher", None)):
        r = oracle_api.client.get(
            "/v1/lookup",
            params={"signal_type": "pdq", "signal": query},
            headers=oracle_api.as_(who),
        )
        (match,) = r.json()["matches"]
        assert match["distance"] == expected and match["band"] == "close"
    # A curator may read the list anyway: the same walk is not refused (and succeeds).
    refusals: list[str] = []
    guess, lookups = _attack(query, _raw_lookup(oracle_api, "curator", refusals))
    assert guess == secret and not refusals and lookups == 257
