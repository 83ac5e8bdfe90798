"""The actions API in-process, on SQLite and PostgreSQL: rules and webhooks managed over HTTP
with scopes, matches running the rules (/v1/match and /v1/match/signals), the actions log, and
the deliverer inside the served app sending to a real receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_api_support import QUIET, Api, make_keys, photo, transformed
from test_webhook_outbox import Receiver, free_port

from amparo.actions import Actioner
from amparo.api import create_app
from amparo.app import Amparo
from amparo.config import Settings
from amparo.events import MatchedContent

pytestmark = QUIET


@dataclass(frozen=True)
class Preserved:
    id: int


class Fakes:
    """Cases, evidence and reports belong to other parts: fakes of what the actioner needs of
    them (the ``Protocol``s of ``amparo.actions.engine``) that record their calls."""

    def __init__(self) -> None:
        self.cases: list[tuple[MatchedContent, dict[str, Any]]] = []
        self.preserved: list[bytes | Path] = []

    def open_or_extend(
        self, content: MatchedContent, *, evidence_id: int | None, rule: str, actor: str
    ) -> int:
        self.cases.append((content, {"evidence_id": evidence_id, "rule": rule, "actor": actor}))
        return 41

    def preserve(
        self, data: bytes | Path, *, content: MatchedContent, reason: str, actor: str
    ) -> Preserved:
        self.preserved.append(data)
        return Preserved(id=9)

    def queue_draft(self, case_id: int, *, rule: str, actor: str) -> int:
        raise AssertionError("no rule here reports")


@pytest.fixture
def api(settings: Settings) -> Iterator[tuple[Api, Fakes]]:
    # The webhook receiver is on loopback: allow-listed, as a deployment would.
    settings = replace(settings, webhook_poll_seconds=0.05, url_allowlist="127.0.0.1")
    keys = make_keys(settings)
    with TestClient(create_app(settings)) as client:
        fakes = Fakes()
        amparo: Amparo = client.app.state.service.amparo  # type: ignore[attr-defined]
        amparo.wire(
            actions=Actioner(settings, amparo.store, evidence=fakes, cases=fakes, reports=fakes)
        )
        yield Api(client, settings, keys), fakes


def test_rules_over_http_with_scopes_and_history(api: tuple[Api, Fakes]) -> None:
    a, _ = api
    c, cur = a.client, a.as_("curator")
    body = {"name": "r", "conditions": {"banks": ["known"]}, "actions": [{"type": "review"}]}
    assert c.post("/v1/rules", json=body, headers=a.as_("matcher")).status_code == 403
    r = c.post("/v1/rules", json=body, headers=cur)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1 and r.json()["created_by"] == "key:curator"
    assert c.post("/v1/rules", json=body, headers=cur).status_code == 409
    bad = {"name": "x", "actions": [{"type": "explode"}]}
    r = c.post("/v1/rules", json=bad, headers=cur)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    r = c.post(
        "/v1/rules",
        json={"name": "w", "actions": [{"type": "webhook", "endpoint": "x"}]},
        headers=cur,
    )
    assert r.status_code == 400 and "amparo webhooks add x" in r.json()["error"]["hint"]

    r = c.put("/v1/rules/r", json={**body, "name": None, "priority": 1}, headers=cur)
    assert r.status_code == 200 and r.json()["version"] == 2
    assert c.put("/v1/rules/r", json={**body, "name": "other"}, headers=cur).status_code == 400
    assert c.put("/v1/rules/nope", json=body | {"name": None}, headers=cur).status_code == 404
    assert [x["name"] for x in c.get("/v1/rules", headers=a.as_("auditor")).json()] == ["r"]
    assert c.get("/v1/rules/r?version=1", headers=cur).json()["priority"] == 100
    assert c.delete("/v1/rules/r", headers=cur).json()["deleted"] is True
    assert c.get("/v1/rules/r", headers=cur).status_code == 404
    history = c.get("/v1/rules/r/history", headers=a.as_("auditor")).json()
    assert [(h["version"], h["deleted"]) for h in history] == [(1, False), (2, False), (3, True)]


def test_webhook_endpoints_over_http(api: tuple[Api, Fakes]) -> None:
    a, _ = api
    c, cur = a.client, a.as_("curator")
    r = c.post("/v1/webhooks", json={"name": "p", "url": "https://example.invalid/h"}, headers=cur)
    assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")
    assert c.get("/v1/webhooks/p", headers=cur).json()["secret"] is None
    assert c.get("/v1/webhooks", headers=a.as_("matcher")).status_code == 403
    r = c.patch("/v1/webhooks/p", json={"rotate_secret": True, "enabled": False}, headers=cur)
    assert r.json()["secret"].startswith("whsec_") and r.json()["enabled"] is False
    assert c.get("/v1/webhooks/outbox", headers=cur).json() == []
    assert c.post("/v1/webhooks/outbox/123/retry", headers=cur).status_code == 404
    assert c.delete("/v1/webhooks/p", headers=cur).json() == {
        "deleted": "p",
        "undelivered_events": 0,
    }


def _bank(a: Api) -> None:
    cur = a.as_("curator")
    assert a.client.post("/v1/banks", json={"name": "known"}, headers=cur).status_code == 201
    r = a.client.post(
        "/v1/banks/known/media",
        files={"file": ("a.jpg", photo(), "image/jpeg")},
        params={"category": "A1"},
        headers=cur,
    )
    assert r.status_code == 200, r.text


def test_matches_run_the_rules_and_webhooks_are_delivered(api: tuple[Api, Fakes]) -> None:
    a, fakes = api
    c, cur = a.client, a.as_("curator")
    _bank(a)
    # No rules: matching works as before, no actions.
    r = c.post(
        "/v1/match",
        files={"file": ("q.jpg", transformed(), "image/jpeg")},
        headers=a.as_("matcher"),
    )
    assert r.json()["matches"] and r.json()["actions"] == []

    port = free_port()
    r = c.post("/v1/webhooks", json={"name": "p", "url": f"http://127.0.0.1:{port}/"}, headers=cur)
    secret = r.json()["secret"]
    rule = {
        "name": "known",
        "conditions": {"banks": ["known"], "source_kinds": ["api"]},
        "actions": [{"type": "review"}, {"type": "webhook", "endpoint": "p"}],
    }
    assert c.post("/v1/rules", json=rule, headers=cur).status_code == 201

    with Receiver(port, secret) as receiver:
        upload = transformed()
        r = c.post(
            "/v1/match",
            files={"file": ("orig.jpg", upload, "image/jpeg")},
            params={"account_id": "acc-7", "upload_id": "up-1"},
            headers=a.as_("matcher"),
        )
        assert r.status_code == 200, r.text
        actions = r.json()["actions"]
        assert [(x["action"], x["outcome"]) for x in actions] == [
            ("review", "done"),
            ("webhook", "done"),
        ]
        assert actions[0]["detail"] == {"case_id": 41, "evidence_id": 9}
        content, kw = fakes.cases[0]
        assert content.source.account_id == "acc-7" and content.source.file_name == "orig.jpg"
        assert kw["rule"] == "known" and kw["actor"] == "key:matcher"
        assert fakes.preserved == [upload]  # the upload's bytes, for the reviewer

        # The app's background deliverer sends the event.
        event_id = actions[1]["detail"]["event_id"]
        deadline = time.monotonic() + 10
        while event_id not in receiver.accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.accepted == {event_id} and receiver.bad_signatures == 0

    outbox = c.get("/v1/webhooks/outbox?state=delivered", headers=cur).json()
    assert [e["event_id"] for e in outbox] == [event_id]
    payload = outbox[0]["payload"]
    assert payload["source"] == {
        "kind": "api",
        "account_id": "acc-7",
        "upload_id": "up-1",
        "file_name": "orig.jpg",
    }
    assert payload["matches"][0]["bank"] == "known" and "signal" not in payload["matches"][0]

    log = c.get("/v1/actions", headers=a.as_("auditor")).json()
    assert [(x["action"], x["rule"]) for x in log] == [("webhook", "known"), ("review", "known")]
    assert c.get("/v1/actions", headers=a.as_("matcher")).status_code == 403


def test_signal_lookups_act_when_the_content_is_named(api: tuple[Api, Fakes]) -> None:
    a, fakes = api
    c, cur = a.client, a.as_("curator")
    md5 = "0123456789abcdef0123456789abcdef"
    sha = "ab" * 32
    r = c.post("/v1/banks", json={"name": "known"}, headers=cur)
    r = c.post(
        "/v1/banks/known/entries",
        json={
            "entries": [
                {"signal_type": "md5", "signal": md5},
                {"signal_type": "sha256", "signal": sha},
            ]
        },
        headers=cur,
    )
    assert r.status_code == 200, r.text
    assert (
        c.post(
            "/v1/rules", json={"name": "all", "actions": [{"type": "review"}]}, headers=cur
        ).status_code
        == 201
    )
    m = a.as_("matcher")
    # md5 alone: matched, but nothing names the content.
    r = c.post(
        "/v1/match/signals", json={"signals": [{"signal_type": "md5", "signal": md5}]}, headers=m
    )
    assert r.json()["results"][0]["matches"] and r.json()["actions"] == []
    assert "sha256" in r.json()["actions_skipped"]
    # One content's signals, sha256 included: one find with both matches, one case.
    signals = [{"signal_type": "md5", "signal": md5}, {"signal_type": "sha256", "signal": sha}]
    r = c.post(
        "/v1/match/signals", json={"signals": signals}, params={"upload_id": "u9"}, headers=m
    )
    assert [x["action"] for x in r.json()["actions"]] == ["review"]
    content, _ = fakes.cases[0]
    assert content.sha256 == sha and content.md5 == md5 and len(content.matches) == 2
    assert content.source.upload_id == "u9" and fakes.preserved == []


def test_webhook_urls_follow_the_fetch_address_policy(sqlite_settings: Settings) -> None:
    """Internal addresses are refused when an endpoint is added or changed, and at delivery
    (DNS may change after): /test then says "refused by policy" without connecting."""
    keys = make_keys(sqlite_settings)
    dns = {"hooks.test": ["93.184.216.34"]}
    with TestClient(create_app(sqlite_settings)) as c:
        c.app.state.service.fetcher.resolver = lambda host, _port: dns[host]  # type: ignore[attr-defined]
        cur = {"Authorization": f"Bearer {keys['curator']}"}
        for url in (
            "http://169.254.169.254/latest/meta-data",
            "http://127.0.0.1:8080/",
            "http://[::1]/",
            "http://10.0.0.5/",
            "http://[2002:a9fe:a9fe::1]/",  # 6to4 of the metadata address
        ):
            r = c.post("/v1/webhooks", json={"name": "p", "url": url}, headers=cur)
            assert r.status_code == 400, (url, r.text)
            error = r.json()["error"]
            assert error["code"] == "url_refused" and "webhook URL refused" in error["message"]
            assert "url_allowlist" in error["hint"]
        port = free_port()
        r = c.post(
            "/v1/webhooks", json={"name": "p", "url": f"http://hooks.test:{port}/"}, headers=cur
        )
        assert r.status_code == 201, r.text
        r = c.patch("/v1/webhooks/p", json={"url": "http://169.254.169.254/"}, headers=cur)
        assert r.status_code == 400 and r.json()["error"]["code"] == "url_refused"

        dns["hooks.test"] = ["127.0.0.1"]  # the name now points inside
        with Receiver(port, "whatever") as receiver:
            r = c.post("/v1/webhooks/p/test", headers=cur)
            assert r.status_code == 200, r.text
            result = r.json()
            assert result["delivered"] is False and result["status"] is None
            assert result["error"].startswith("refused by policy")
            assert receiver.received == []  # no connection: /test is no probe


def test_rules_on_how_a_match_was_found(api: tuple[Api, Fakes]) -> None:
    """The ``paths`` condition over HTTP: stored and shown, refused when unknown, and acting
    only on matches found those ways (a re-upload is found ``plain``)."""
    a, fakes = api
    c, cur = a.client, a.as_("curator")
    _bank(a)
    body = {
        "name": "indirect",
        "conditions": {"paths": ["dihedral", "variant"]},
        "actions": [{"type": "review"}],
    }
    r = c.post("/v1/rules", json=body, headers=cur)
    assert r.status_code == 201, r.text
    assert r.json()["conditions"] == {"paths": ["dihedral", "variant"]}
    assert c.get("/v1/rules/indirect", headers=cur).json()["conditions"]["paths"] == [
        "dihedral",
        "variant",
    ]
    bad = c.post(
        "/v1/rules", json={**body, "name": "bad", "conditions": {"paths": ["mirror"]}}, headers=cur
    )
    assert bad.status_code == 400, bad.text
    error = bad.json()["error"]
    assert "paths" in str(error) and all(p in str(error) for p in ("plain", "dihedral"))

    def match() -> dict[str, Any]:
        r = c.post(
            "/v1/match",
            files={"file": ("q.jpg", transformed(), "image/jpeg")},
            headers=a.as_("matcher"),
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    found = match()
    assert [(m["path"], m["variant"], m["transform"]) for m in found["matches"]] == [
        ("plain", None, None)
    ]
    assert found["actions"] == [] and fakes.cases == []
    r = c.put("/v1/rules/indirect", json={**body, "conditions": {"paths": ["plain"]}}, headers=cur)
    assert r.status_code == 200 and r.json()["conditions"] == {"paths": ["plain"]}
    assert [(x["action"], x["outcome"]) for x in match()["actions"]] == [("review", "done")]
