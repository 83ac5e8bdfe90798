"""A real `amparo serve` on loopback under URL fetches that hang: a server trickles its response
headers a byte at a time to 50 concurrent url= requests. Every other route keeps answering
(the fetches hold no worker threads), each fetch ends at its total deadline, and a key over its
cap of fetches in flight is refused at once with a clear 429."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from test_serve import start

from amparo.app import Amparo
from amparo.config import load_settings
from amparo.keys import KeyService
from slow_server import Trickler

FETCHES = 50
DEADLINE = 2.0


def serve(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    return start(
        home,
        level="WARNING",
        env={
            "AMPARO_URL_ALLOWLIST": "127.0.0.1",  # the hostile server is on loopback
            "AMPARO_FETCH_TIMEOUT_SECONDS": str(int(DEADLINE)),
            "AMPARO_FETCH_MAX_CONCURRENT_PER_KEY": str(FETCHES),
            "AMPARO_FETCH_MAX_CONCURRENT": "100",
            "AMPARO_API_RATE_LIMITS": "default=1000:1000",
        },
    )


async def timed(client: httpx.AsyncClient, method: str, url: str, **kw: object) -> float:
    start = time.monotonic()
    r = await client.request(method, url, **kw)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    return time.monotonic() - start


async def hammer(base: str, slow_url: str, keys: dict[str, str], slow: Trickler) -> None:
    hasher = {"Authorization": f"Bearer {keys['hasher']}"}
    matcher = {"Authorization": f"Bearer {keys['matcher']}"}
    limits = httpx.Limits(max_connections=FETCHES + 10)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

        async def fetch(i: int) -> tuple[float, httpx.Response]:
            start = time.monotonic()
            r = await client.post("/v1/hash", params={"url": f"{slow_url}/{i}.jpg"}, headers=hasher)
            return time.monotonic() - start, r

        tasks = [asyncio.create_task(fetch(i)) for i in range(FETCHES)]
        while slow.connections < FETCHES:  # all of them hanging on the slow server
            await asyncio.sleep(0.02)

        # While they hang: liveness and matching answer at once.
        signals = {"signals": [{"signal_type": "md5", "signal": "0" * 32}]}
        for _ in range(3):
            assert await timed(client, "GET", "/healthz") < 1.0
            took = await timed(client, "POST", "/v1/match/signals", json=signals, headers=matcher)
            assert took < 1.0
        # One more fetch for the same key is over its cap: refused at once, clearly.
        r = await client.get("/h/hash", params={"url": slow_url + "/x.jpg"}, headers=hasher)
        assert r.status_code == 429 and r.headers["Retry-After"]
        error = r.json()["error"]
        assert (
            error["code"] == "too_many_fetches"
            and "fetch_max_concurrent_per_key" in (error["hint"])
        )

        for took, r in await asyncio.gather(*tasks):
            assert r.status_code == 422, r.text
            assert r.json()["error"]["code"] == "fetch_failed"
            assert f"longer than {DEADLINE:g} s" in r.json()["error"]["message"]
            assert DEADLINE - 0.1 < took < DEADLINE + 3.0  # ended at its deadline


@pytest.mark.slow
def test_hanging_url_fetches_end_at_their_deadline_and_block_no_other_route(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    settings = load_settings(env={}, overrides={"home": home})
    with Amparo(settings) as core:
        keys = {
            scope: KeyService(core.store).create(scope, [scope], actor="test").secret
            for scope in ("hasher", "matcher")
        }
    proc, base = serve(home)
    try:
        with Trickler(interval=0.5, max_seconds=30) as slow:
            asyncio.run(hammer(base, slow.url, keys, slow))
            # The server gave up on every connection at the deadline (none left hanging).
            end = time.monotonic() + 5
            while slow.open and time.monotonic() < end:
                time.sleep(0.05)
            assert slow.open == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
