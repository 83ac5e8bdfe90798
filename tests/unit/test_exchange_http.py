"""The exchanges' HTTP client: bodies capped, requests under an overall deadline, retries of
429/5xx, clear errors for the rest. In-memory transport, injectable clocks: no waiting."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from amparo.errors import CredentialsError, ExchangeError
from amparo.exchanges.http import RetryingClient


class Trickle(httpx.SyncByteStream):
    """A body that never ends, one small chunk at a time."""

    def __iter__(self) -> Iterator[bytes]:
        while True:
            yield b"0" * 10


def test_a_body_over_the_cap_is_refused_declared_or_not() -> None:
    declared = httpx.MockTransport(lambda r: httpx.Response(200, content=b"x" * 1000))
    client = RetryingClient(transport=declared, max_bytes=100, attempts=1)
    with pytest.raises(ExchangeError, match="more than the 100"):
        client.get("https://source.example/list")
    endless = httpx.MockTransport(lambda r: httpx.Response(200, stream=Trickle()))
    client = RetryingClient(transport=endless, max_bytes=10_000, attempts=1)
    with pytest.raises(ExchangeError, match="more than the 10,000 bytes"):
        client.get("https://source.example/list")


def test_a_trickling_source_cannot_hang_a_fetch() -> None:
    ticks = iter(range(0, 10_000, 7))
    endless = httpx.MockTransport(lambda r: httpx.Response(200, stream=Trickle()))
    client = RetryingClient(
        transport=endless, max_bytes=10**9, deadline=60, attempts=1, monotonic=lambda: next(ticks)
    )
    with pytest.raises(ExchangeError, match="more than 60 s"):
        client.get("https://source.example/list")


def test_retries_then_clear_errors() -> None:
    answers = iter([429, 503, 200])
    flaky = httpx.MockTransport(lambda r: httpx.Response(next(answers), content=b"ok"))
    waits: list[float] = []
    client = RetryingClient(transport=flaky, sleep=waits.append, attempts=3)
    assert client.get("https://source.example/").content == b"ok"
    assert len(waits) == 2 and client.retries == 2
    refused = httpx.MockTransport(lambda r: httpx.Response(403))
    with pytest.raises(CredentialsError):
        RetryingClient(transport=refused, attempts=3).get("https://source.example/")
    missing = httpx.MockTransport(lambda r: httpx.Response(404, content=b"no"))
    with pytest.raises(ExchangeError, match="404"):
        RetryingClient(transport=missing, attempts=3).get("https://source.example/")
