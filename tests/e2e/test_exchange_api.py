"""``/v1/exchanges`` in-process over a fake ExchangeService: scopes, bodies, every bad input a
4xx JSON body with a hint, fetch failures as 502, the metrics series, and serve's loop
running inside the app."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from test_api_support import QUIET, Api, make_keys

from amparo.api import create_app
from amparo.app import Amparo
from amparo.config import load_settings
from amparo.errors import CredentialsError
from amparo.exchanges.model import FetchResult
from exchange_fakes import NOW, FakeExchangeService, quarantined_item

pytestmark = QUIET

NEW = {
    "name": "mx",
    "exchange": "url",
    "bank": "shared",
    "settings": {"url": "https://hotline.example/list.csv"},
    "credentials": "env:MX_TOKEN",
    "interval_seconds": 900,
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Amparo]]:
    """One app for the module (starting one takes seconds); each test gets a fresh fake."""
    home = tmp_path_factory.mktemp("exchange-api") / "home"
    settings = load_settings(env={}, overrides={"home": home, "exchange_poll_seconds": 0.05})
    keys = make_keys(settings)
    amparo = Amparo(settings)
    amparo.exchanges = FakeExchangeService()  # type: ignore[assignment]
    try:
        with TestClient(create_app(settings, amparo=amparo)) as client:
            client.app.state.exchange_metrics.cache_seconds = 0  # type: ignore[attr-defined]
            yield Api(client, settings, keys), amparo
    finally:
        amparo.close()


@pytest.fixture
def api(served: tuple[Api, Amparo]) -> tuple[Api, FakeExchangeService]:
    a, amparo = served
    fake = FakeExchangeService()
    amparo.exchanges = fake  # type: ignore[assignment]
    return a, fake


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in a Prometheus text exposition."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    series = f"{name}{{{wanted}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no {series} in the metrics")


def _error(response: object, status: int, code: str | None = None) -> dict[str, str]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()["error"]  # type: ignore[attr-defined]
    assert body["message"] and body["hint"], body
    if code is not None:
        assert body["code"] == code
    return body  # type: ignore[no-any-return]


def test_scopes(api: tuple[Api, FakeExchangeService]) -> None:
    a, _fake = api
    for who in ("matcher", "hasher", "reviewer", "auditor"):
        _error(a.client.get("/v1/exchanges", headers=a.as_(who)), 403, "permission_denied")
        _error(a.client.post("/v1/exchanges", json=NEW, headers=a.as_(who)), 403)
    assert a.client.get("/v1/exchanges").status_code == 401
    assert a.client.get("/v1/exchanges", headers=a.as_("curator")).json() == []
    assert a.client.get("/v1/exchanges", headers=a.as_("admin")).status_code == 200


def test_create_show_list(api: tuple[Api, FakeExchangeService]) -> None:
    a, fake = api
    created = a.client.post("/v1/exchanges", json=NEW, headers=a.as_("curator"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "mx" and body["credentials"] == "env:MX_TOKEN"
    assert body["interval_seconds"] == 900 and body["enabled"] and body["feedback"]
    assert fake.collaborations["mx"].settings == NEW["settings"]
    fake.statuses["mx"] = {
        "last_fetch_at": NOW,
        "lag_seconds": 30.0,
        "records": 5,
        "quarantined": 1,
        "next_fetch_at": NOW + timedelta(minutes=15),
        "checkpoint": {"etag": "W/1"},
    }
    fake.quarantine["mx"] = [quarantined_item("mx", 1)]
    shown = a.client.get("/v1/exchanges/mx", headers=a.as_("curator")).json()
    assert shown["records"] == 5 and shown["lag_seconds"] == 30.0
    assert shown["checkpoint"] == {"etag": "W/1"}
    assert shown["quarantine"][0]["reason"] == "not a PDQ hash"
    listed = a.client.get("/v1/exchanges", headers=a.as_("curator")).json()
    assert [c["name"] for c in listed] == ["mx"] and listed[0]["quarantine"] is None
    q = a.client.get("/v1/exchanges/mx/quarantine?limit=5", headers=a.as_("curator"))
    assert q.status_code == 200 and q.json()[0]["record_id"] == "r1"


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"exchange": "gopher"}, 400, "unknown exchange type"),
        ({"credentials": "s3cr3t-token-value"}, 400, "not a reference"),
        ({"interval_seconds": 0}, 400, "interval_seconds"),
        ({"name": ""}, 400, "name"),
        ({"surprise": 1}, 400, "surprise"),
        ({"enabled": "yes"}, 400, "enabled"),
    ],
)
def test_create_refuses_bad_input(
    api: tuple[Api, FakeExchangeService], change: dict[str, object], status: int, says: str
) -> None:
    a, fake = api
    response = a.client.post("/v1/exchanges", json={**NEW, **change}, headers=a.as_("curator"))
    body = _error(response, status)
    assert says in body["message"]
    assert "s3cr3t-token-value" not in response.text
    assert "mx" not in fake.collaborations


def test_create_conflict_and_credentials_error(
    api: tuple[Api, FakeExchangeService], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, fake = api
    assert a.client.post("/v1/exchanges", json=NEW, headers=a.as_("curator")).status_code == 201
    _error(a.client.post("/v1/exchanges", json=NEW, headers=a.as_("curator")), 409)

    def refuse(*_args: object, **_kw: object) -> None:
        raise CredentialsError("cannot read env:NOPE", hint="set the variable")

    monkeypatch.setattr(fake, "add", refuse)
    body = _error(
        a.client.post("/v1/exchanges", json={**NEW, "name": "x"}, headers=a.as_("curator")), 400
    )
    assert body["hint"] == "set the variable"  # 400, not 401: the caller's key is fine


def test_patch_delete(api: tuple[Api, FakeExchangeService]) -> None:
    a, fake = api
    a.client.post("/v1/exchanges", json=NEW, headers=a.as_("curator"))
    changed = a.client.patch(
        "/v1/exchanges/mx",
        json={"interval_seconds": 60, "feedback": False, "enabled": False},
        headers=a.as_("curator"),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["interval_seconds"] == 60 and not changed.json()["enabled"]
    assert ("update", ("mx", {"interval_seconds": 60, "feedback": False})) in fake.calls
    assert ("pause", "mx") in fake.calls
    cleared = a.client.patch(
        "/v1/exchanges/mx", json={"credentials": None, "enabled": True}, headers=a.as_("curator")
    )
    assert cleared.json()["credentials"] is None and cleared.json()["enabled"]
    _error(
        a.client.patch("/v1/exchanges/mx", json={"credentials": "raw"}, headers=a.as_("curator")),
        400,
    )
    _error(
        a.client.patch("/v1/exchanges/mx", json={"interval_seconds": -1}, headers=a.as_("curator")),
        400,
    )
    _error(a.client.patch("/v1/exchanges/no", json={}, headers=a.as_("curator")), 404)
    _error(a.client.patch("/v1/exchanges/mx", json={}, headers=a.as_("matcher")), 403)

    removed = a.client.delete("/v1/exchanges/mx?withdraw_entries=true", headers=a.as_("curator"))
    assert removed.json() == {"removed": "mx", "entries_withdrawn": True}
    assert ("remove", ("mx", False)) in fake.calls
    _error(a.client.delete("/v1/exchanges/mx", headers=a.as_("curator")), 404)


def test_fetch(api: tuple[Api, FakeExchangeService]) -> None:
    a, fake = api
    a.client.post("/v1/exchanges", json=NEW, headers=a.as_("curator"))
    done = a.client.post("/v1/exchanges/mx/fetch?full=true", headers=a.as_("curator"))
    assert done.status_code == 200, done.text
    assert done.json()["upserts"] == 3 and done.json()["full"] is True
    assert ("fetch", ("mx", True)) in fake.calls

    fake.results["mx"] = FetchResult(collaboration="mx", fetched=False)
    assert (
        a.client.post("/v1/exchanges/mx/fetch", headers=a.as_("curator")).json()["fetched"] is False
    )

    fake.results["mx"] = FetchResult(collaboration="mx", batches=2, upserts=10, error="HTTP 503")
    failed = a.client.post("/v1/exchanges/mx/fetch", headers=a.as_("curator"))
    body = _error(failed, 502, "exchange_failed")
    assert "HTTP 503" in body["message"]
    assert failed.json()["result"]["upserts"] == 10  # what landed before the failure

    fake.raises["mx"] = CredentialsError("NCMEC refused the credentials", hint="check them")
    refused = _error(a.client.post("/v1/exchanges/mx/fetch", headers=a.as_("curator")), 502)
    assert refused["code"] == "bad_credentials" and refused["hint"] == "check them"

    _error(a.client.post("/v1/exchanges/nope/fetch", headers=a.as_("curator")), 404)
    _error(a.client.post("/v1/exchanges/mx/fetch", headers=a.as_("matcher")), 403)


def test_types(api: tuple[Api, FakeExchangeService], monkeypatch: pytest.MonkeyPatch) -> None:
    from amparo.exchanges import base

    class Dummy(base.Exchange):
        kind = "dummy"
        description = "A test exchange."
        needs_credentials = True

        def fetch(self, checkpoint):  # type: ignore[no-untyped-def]
            return iter(())

    monkeypatch.setattr(base, "exchange_types", lambda: {"dummy": Dummy})
    a, _fake = api
    types = a.client.get("/v1/exchanges/types", headers=a.as_("curator")).json()
    assert types == [
        {
            "name": "dummy",
            "description": "A test exchange.",
            "supports_feedback": False,
            "needs_credentials": True,
        }
    ]


def test_metrics_carry_each_collaboration(api: tuple[Api, FakeExchangeService]) -> None:
    a, fake = api
    a.client.post("/v1/exchanges", json=NEW, headers=a.as_("curator"))
    fake.statuses["mx"] = {
        "last_fetch_at": NOW,
        "last_attempt_at": NOW + timedelta(minutes=1),
        "last_error": "HTTP 503",
        "lag_seconds": 90.0,
        "entries_added": 12,
        "entries_removed": 2,
        "quarantined": 3,
        "pending_opinions": 4,
    }
    text = a.client.get("/metrics", headers=a.as_("auditor")).text
    mx = {"collaboration": "mx"}
    assert sample(text, "amparo_exchange_last_success_timestamp_seconds", **mx) == NOW.timestamp()
    assert sample(text, "amparo_exchange_lag_seconds", **mx) == 90.0
    assert sample(text, "amparo_exchange_entries_added_total", **mx) == 12
    assert sample(text, "amparo_exchange_entries_removed_total", **mx) == 2
    assert sample(text, "amparo_exchange_quarantined_records", **mx) == 3
    assert sample(text, "amparo_exchange_pending_opinions", **mx) == 4
    assert sample(text, "amparo_exchange_last_fetch_failed", **mx) == 1
    assert sample(text, "amparo_exchange_enabled", **mx) == 1
    info = {"collaboration": "mx", "exchange": "url", "bank": "shared"}
    assert sample(text, "amparo_exchange_info", **info) == 1
    assert sample(text, "amparo_exchange_status_error") == 0


def test_serve_loop_runs_in_the_app(api: tuple[Api, FakeExchangeService]) -> None:
    a, fake = api
    fake.due_raises = [RuntimeError("a bug in one tick")]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if sum(1 for call, _ in fake.calls if call == "fetch_due") >= 2:
            break
        time.sleep(0.02)
    assert sum(1 for call, _ in fake.calls if call == "fetch_due") >= 2  # survived the error
    assert any(call == "deliver_opinions" for call, _ in fake.calls)
    metrics = a.client.get("/metrics", headers=a.as_("auditor")).text
    assert sample(metrics, "amparo_exchange_loop_errors_total", step="fetch") >= 1
