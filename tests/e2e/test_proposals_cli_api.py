"""Share-back proposals over the API (scopes, errors as JSON with a hint) and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from test_api_support import QUIET, Api, sqlite_api
from typer.testing import CliRunner

from amparo.app import Amparo
from amparo.banks.model import BankInfo
from amparo.cli.main import app
from amparo.config import load_settings
from amparo.events import MatchedContent, Source
from amparo.matching import Match

__all__ = ["sqlite_api"]
pytestmark = QUIET

SHA = "ab" * 32
MD5 = "cd" * 16


def core(api: Api) -> Amparo:
    amparo: Amparo = api.client.app.state.service.amparo  # type: ignore[attr-defined]
    return amparo


def confirmed_item(amparo: Amparo, *, confirm: bool = True) -> int:
    for name in ("share", "benign"):
        kind = "negative" if name == "benign" else "positive"
        amparo.banks.create(BankInfo(name=name, kind=kind))
    find = MatchedContent(
        sha256=SHA, md5=MD5, matches=(Match("incoming", 1, "md5", 0),), source=Source()
    )
    item = amparo.cases.get(amparo.cases.open_or_extend(find)).items[0].id
    if confirm:
        amparo.cases.decide(item, "confirm", classification="A1", reviewer="rita")
    return item


def test_propose_approve_reject_over_the_api(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    item = confirmed_item(core(api))
    url = f"/v1/review/items/{item}/proposals"
    # Scopes: reviewers and curators propose; matchers and auditors do not.
    for who in ("matcher", "auditor", "hasher"):
        assert c.post(url, json={"bank": "share"}, headers=api.as_(who)).status_code == 403
    bad = c.post(url, json={"bank": "benign"}, headers=api.as_("reviewer"))
    assert bad.status_code == 400 and bad.json()["error"]["hint"]
    missing = c.post(url, json={"bank": "nope"}, headers=api.as_("reviewer"))
    assert missing.status_code == 404
    unknown = c.post(
        "/v1/review/items/999999/proposals", json={"bank": "share"}, headers=api.as_("reviewer")
    )
    assert unknown.status_code == 404
    extra = c.post(url, json={"bank": "share", "x": 1}, headers=api.as_("reviewer"))
    assert extra.status_code == 400 and extra.json()["error"]["hint"]
    r = c.post(url, json={"bank": "share", "jurisdiction": "MX"}, headers=api.as_("reviewer"))
    assert r.status_code == 201, r.text
    proposal = r.json()
    assert proposal["state"] == "pending" and proposal["proposed_by"] == "key:reviewer"
    again = c.post(url, json={"bank": "share"}, headers=api.as_("curator"))
    assert again.status_code == 409 and again.json()["error"]["hint"]
    # The queue and the decisions are the curators'.
    assert c.get("/v1/proposals", headers=api.as_("reviewer")).status_code == 403
    queue = c.get("/v1/proposals?state=pending", headers=api.as_("curator")).json()
    assert [p["id"] for p in queue] == [proposal["id"]]
    approve = f"/v1/proposals/{proposal['id']}/approve"
    assert c.post(approve, headers=api.as_("reviewer")).status_code == 403
    r = c.post(approve, headers=api.as_("curator"))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved"
    # No preserved copy: the SHA-256 naming the item only (not the MD5 the lookup sent).
    assert [tuple(e) for e in r.json()["entries"]] == [("sha256", SHA)]
    assert c.post(approve, headers=api.as_("admin")).status_code == 409
    entries = c.get("/v1/banks/share", headers=api.as_("curator")).json()
    assert entries["entries"] == 1
    # A second proposal, rejected with a reason.
    r = c.post(url, json={"bank": "share"}, headers=api.as_("curator"))
    assert r.status_code == 201
    pid = r.json()["id"]
    r = c.post(f"/v1/proposals/{pid}/reject", json={"reason": "dup"}, headers=api.as_("curator"))
    assert r.status_code == 200 and r.json()["reason"] == "dup"
    assert c.get("/v1/proposals", headers=api.as_("curator")).json() == []
    every = c.get("/v1/proposals?state=all", headers=api.as_("admin")).json()
    assert [p["state"] for p in every] == ["approved", "rejected"]
    assert c.post("/v1/proposals/999999/approve", headers=api.as_("curator")).status_code == 404


def test_a_not_confirmed_item_is_refused_over_the_api(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    item = confirmed_item(core(api), confirm=False)
    r = c.post(
        f"/v1/review/items/{item}/proposals", json={"bank": "share"}, headers=api.as_("reviewer")
    )
    assert r.status_code == 409 and "confirm" in r.json()["error"]["hint"]


def test_propose_approve_reject_from_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, ["--home", str(home), *args])
        assert result.exit_code == 0, result.output
        return result.output

    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        item = confirmed_item(amparo)
    out = run("cases", "propose", str(item), "--bank", "share", "--json")
    pid = json.loads(out.strip().splitlines()[-1])["id"]
    listed = run("bank", "proposals", "share", "--json")
    assert json.loads(listed.strip().splitlines()[-1])["state"] == "pending"
    assert "1 entry added to share" in run("bank", "approve", str(pid), "--actor", "carla")
    refused = runner.invoke(app, ["--home", str(home), "bank", "approve", str(pid)])
    assert refused.exit_code == 2 and "already approved" in refused.output
    run("cases", "propose", str(item), "--bank", "share")
    second = run("bank", "proposals", "--json")
    pid2 = json.loads(second.strip().splitlines()[-1])["id"]
    assert "rejected" in run("bank", "reject", str(pid2), "--reason", "dup")
    history = run("bank", "proposals", "--state", "all", "--json").strip().splitlines()
    assert [json.loads(line)["state"] for line in history] == ["approved", "rejected"]
