"""The review API (/v1/cases, /v1/review/...) and the web UI's server side (sessions, CSRF,
headers, shielded media) in-process, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from test_api_support import QUIET, Api, api, photo, sqlite_api

from amparo.app import Amparo
from amparo.events import MatchedContent, Source
from amparo.evidence.service import EvidenceStore
from amparo.matching import Match

__all__ = ["api", "sqlite_api"]
pytestmark = QUIET

PHOTO = photo("astronaut")


@pytest.fixture(autouse=True)
def fake_evidence(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, str]]]:
    """The evidence store is another part's work: here every item id reads as one photo."""
    reads: list[tuple[int, str]] = []

    def read(_self: EvidenceStore, item_id: int, *, actor: str) -> bytes:
        reads.append((item_id, actor))
        return PHOTO

    monkeypatch.setattr(EvidenceStore, "read", read)
    yield reads


def core(api: Api) -> Amparo:
    amparo: Amparo = api.client.app.state.service.amparo  # type: ignore[attr-defined]
    return amparo


def open_case(api: Api, n: int, category: str = "A2", account: str | None = None) -> int:
    content = MatchedContent(
        sha256=f"{n:064x}",
        matches=(Match("known", n, "pdq", 8, category=category),),
        source=Source(account_id=account, file_name=f"upload-{n}.jpg"),
        md5=f"{n:032x}",
        size=2048,
        media_kind="photo",
        at=datetime.now(UTC),
    )
    return core(api).cases.open_or_extend(content, evidence_id=n, rule="test-rule")


def test_queue_case_and_decision_over_the_api(api: Api) -> None:
    c = api.client
    low = open_case(api, 1, category="B2")
    high = open_case(api, 2, category="A1")
    r = c.get("/v1/cases", headers=api.as_("reviewer"))
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()] == [high, low]
    case = c.get(f"/v1/cases/{high}", headers=api.as_("reviewer")).json()
    item = case["items"][0]
    assert item["matches"][0]["category"] == "A1" and item["decision"] is None
    assert item["source"]["file_name"] == "upload-2.jpg"
    url = f"/v1/cases/items/{item['id']}/decision"
    bad = c.post(url, json={"kind": "confirm"}, headers=api.as_("reviewer"))
    assert bad.status_code == 400 and "classification" in bad.json()["error"]["message"]
    r = c.post(
        url,
        json={"kind": "confirm", "classification": "A1", "annotations": ["x"], "note": "ok"},
        headers=api.as_("reviewer"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["reviewer"] == "reviewer" and r.json()["classification"] == "A1"
    assert [x["id"] for x in c.get("/v1/cases", headers=api.as_("admin")).json()] == [low]
    decided = c.get("/v1/cases?status=decided", headers=api.as_("reviewer")).json()
    assert [x["id"] for x in decided] == [high]
    # Scopes: matchers and curators do not review; auditors neither.
    for who in ("matcher", "curator", "auditor"):
        assert c.get("/v1/cases", headers=api.as_(who)).status_code == 403
    assert c.get("/v1/cases/999999", headers=api.as_("reviewer")).status_code == 404
    log = core(api).audit.entries(10)
    assert any(a.action == "case.decision" and a.actor == "key:reviewer" for a in log)
    assert c.get("/v1/review/exposure", headers=api.as_("reviewer")).json()["revealed_today"] == 0


def test_disabled_entries_are_for_curators(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    assert (
        c.post("/v1/banks", json={"name": "known"}, headers=api.as_("curator")).status_code == 201
    )
    md5 = "0123456789abcdef0123456789abcdef"
    r = c.post(
        "/v1/banks/known/entries",
        json={"entries": [{"signal_type": "md5", "signal": md5}]},
        headers=api.as_("curator"),
    )
    assert r.status_code == 200, r.text
    (found,) = core(api).checks.match_signals([("md5", md5)])
    for n in range(3):
        content = MatchedContent(sha256=f"{n:064x}", matches=tuple(found))
        item = core(api).cases.get(core(api).cases.open_or_extend(content)).items[0]
        r = c.post(
            f"/v1/cases/items/{item.id}/decision",
            json={"kind": "false_positive"},
            headers=api.as_("reviewer"),
        )
        assert r.status_code == 200
    assert c.get("/v1/review/disabled-entries", headers=api.as_("reviewer")).status_code == 403
    listed = c.get("/v1/review/disabled-entries", headers=api.as_("curator")).json()
    assert [(e["entry_id"], e["bank"], e["false_positives"]) for e in listed] == [
        (found[0].entry_id, "known", 3)
    ]
    r = c.post(
        f"/v1/review/disabled-entries/{found[0].entry_id}/enable", headers=api.as_("curator")
    )
    assert r.status_code == 200
    assert c.get("/v1/review/disabled-entries", headers=api.as_("curator")).json() == []


def test_negative_bank_over_the_api(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    r = c.post("/v1/banks", json={"name": "benign", "kind": "negative"}, headers=api.as_("curator"))
    assert r.status_code == 201 and r.json()["kind"] == "negative"
    r = c.patch("/v1/banks/benign", json={"kind": "positive"}, headers=api.as_("curator"))
    assert r.json()["kind"] == "positive"
    r = c.post("/v1/banks", json={"name": "x", "kind": "odd"}, headers=api.as_("curator"))
    assert r.status_code == 400


# -- the web UI's server side -----------------------------------------------------------------


def sign_in(client: TestClient, key: str) -> str:
    page = client.get("/review/signin")
    assert page.status_code == 200
    pre = re.search(r'name="pre" value="([^"]+)"', page.text)
    assert pre is not None
    r = client.post(
        "/review/signin", data={"key": key, "pre": pre.group(1)}, follow_redirects=False
    )
    assert r.status_code in (303, 401), r.text
    return r.headers.get("location", "")


def csrf_of(html: str) -> str:
    found = re.search(r'data-csrf="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_web_sign_in_csrf_headers_and_shielded_media(
    sqlite_api: Api, fake_evidence: list[tuple[int, str]]
) -> None:
    api, c = sqlite_api, sqlite_api.client
    case_id = open_case(api, 3)
    assert c.get("/review/queue", follow_redirects=False).headers["location"] == "/review/signin"
    assert sign_in(c, api.keys["matcher"]) == ""  # refused: no reviewer scope
    assert sign_in(c, "amp_notakey_at_all") == ""
    assert "amparo_review" not in c.cookies
    assert sign_in(c, api.keys["reviewer"]) == "/review/queue"
    queue = c.get("/review/queue")
    assert queue.status_code == 200 and f"/review/cases/{case_id}" in queue.text
    headers = queue.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    page = c.get(f"/review/cases/{case_id}")
    assert page.status_code == 200 and f"{3:064x}" in page.text and "<script>" not in page.text
    item_id = core(api).cases.get(case_id).items[0].id
    # Shielded media: greyscale, blurred, not cached; the clear one only after a reveal.
    media = c.get(f"/review/items/{item_id}/media")
    assert media.status_code == 200 and media.headers["cache-control"] == "no-store"
    shielded = np.asarray(Image.open(io.BytesIO(media.content)))
    assert shielded.ndim == 2  # one channel: greyscale
    original = np.asarray(Image.open(io.BytesIO(PHOTO)).convert("L").resize(shielded.shape[::-1]))
    assert _detail(shielded) < _detail(original) / 10
    assert c.get(f"/review/items/{item_id}/media?clear=1").status_code == 403
    # A POST without the session's CSRF token is refused and changes nothing.
    assert c.post(f"/review/items/{item_id}/reveal").status_code == 403
    assert (
        c.post(
            f"/review/items/{item_id}/decision", data={"choice": "escalate", "csrf": "x"}
        ).status_code
        == 403
    )
    assert core(api).cases.item(item_id).decision is None
    token = csrf_of(page.text)
    r = c.post(f"/review/items/{item_id}/reveal", headers={"X-CSRF-Token": token})
    assert r.status_code == 200 and r.json()["revealed_today"] == 1
    clear = c.get(f"/review/items/{item_id}/media?clear=1")
    assert clear.status_code == 200
    assert np.asarray(Image.open(io.BytesIO(clear.content))).ndim == 3  # colour
    assert fake_evidence[-1] == (3, "key:reviewer")
    r = c.post(
        f"/review/items/{item_id}/decision",
        data={"choice": "confirm:B1", "csrf": token, "note": "seen", "annotations": "a, b"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    decision = core(api).cases.item(item_id).decision
    assert decision is not None and decision.classification == "B1"
    assert decision.annotations == ("a", "b") and decision.reviewer == "reviewer"
    actions = [a.action for a in core(api).audit.entries(20)]
    assert {"review.sign_in", "case.reveal", "case.decision"} <= set(actions)
    # Curators see the entries page, not the queue; reviewers the reverse.
    assert c.get("/review/entries").status_code == 403
    c.post("/review/signout", data={"csrf": token})
    assert c.get("/review/queue", follow_redirects=False).status_code == 303
    assert sign_in(c, api.keys["curator"]) == "/review/entries"
    assert c.get("/review/entries").status_code == 200
    assert c.get("/review/queue").status_code == 403


def test_revoked_key_ends_the_session(sqlite_api: Api) -> None:
    from amparo.keys import KeyService

    api, c = sqlite_api, sqlite_api.client
    secret = KeyService(core(api).store).create("temp", ["reviewer"], actor="t").secret
    assert sign_in(c, secret) == "/review/queue"
    assert c.get("/review/queue").status_code == 200
    KeyService(core(api).store).revoke("temp", actor="t")
    assert c.get("/review/queue", follow_redirects=False).status_code == 303


def test_ids_beyond_a_database_row_are_bad_input(sqlite_api: Api) -> None:
    c, huge = sqlite_api.client, str(2**70)
    for method, path in (
        ("GET", f"/review/cases/{huge}"),
        ("GET", f"/review/cases/1?item={huge}"),
        ("GET", f"/review/items/{huge}/media"),
        ("POST", f"/review/items/{huge}/reveal"),
        ("POST", f"/review/items/{huge}/decision"),
        ("POST", f"/review/entries/{huge}/enable"),
    ):
        r = c.request(method, path)
        assert r.status_code == 400, path
        # Error responses under /review carry the page's security headers too.
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        assert r.headers["cache-control"] == "no-store", path


def _detail(pixels: np.ndarray) -> float:
    """Mean absolute difference of neighbouring pixels: high for sharp images, ~0 for blur."""
    p = pixels.astype(np.float64)
    return float(np.abs(np.diff(p, axis=0)).mean() + np.abs(np.diff(p, axis=1)).mean())


def test_cases_and_negative_bank_on_the_command_line(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from amparo.cli.main import app
    from amparo.config import load_settings

    home = tmp_path / "home"
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, ["--home", str(home), *args])
        assert result.exit_code == 0, result.output
        return result.output

    md5 = "0cc175b9c0f1b6a831c399e269772661"
    run("bank", "create", "known")
    assert "negative" in run("bank", "create", "benign", "--negative")
    run("bank", "add", "known", f"md5:{md5}", "--category", "B2")
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        (found,) = amparo.checks.match_signals([("md5", md5)])
        case_id = amparo.cases.open_or_extend(
            MatchedContent(sha256="ef" * 32, matches=tuple(found), source=Source(scan_id="s1"))
        )
        item_id = amparo.cases.get(case_id).items[0].id
    listed = [json.loads(x) for x in run("cases", "list", "--json").splitlines()]
    assert [(c["id"], c["group"]) for c in listed] == [(case_id, "scan:s1")]
    assert json.loads(run("cases", "show", str(case_id)))["items"][0]["id"] == item_id
    for args in (["show", str(2**70)], ["decide", str(2**70), "confirm"]):
        huge = runner.invoke(app, ["--home", str(home), "cases", *args])
        assert huge.exit_code == 2 and "Traceback" not in huge.output, huge.output
    bad = runner.invoke(app, ["--home", str(home), "cases", "decide", str(item_id), "confirm"])
    assert bad.exit_code == 2 and "classification" in bad.output
    invalid = runner.invoke(
        app,
        ["--home", str(home), "cases", "decide", str(item_id), "confirm", "--classification", "Z9"],
    )
    assert invalid.exit_code == 2 and "'Z9' is not a valid classification" in invalid.output
    assert "A1, A2, B1, B2" in invalid.output and "missing" not in invalid.output
    run("cases", "decide", str(item_id), "false_positive", "--reviewer", "rita")
    refused = runner.invoke(app, ["--home", str(home), "cases", "undo", str(item_id)])
    assert refused.exit_code == 2 and "made by rita" in refused.output
    assert "now waiting for review" in run("cases", "undo", str(item_id), "--reviewer", "rita")
    run("cases", "decide", str(item_id), "confirm", "--classification", "b2", "--reviewer", "rita")
    assert run("cases", "list", "--json").strip() == ""
    shown = json.loads(run("cases", "show", str(case_id)))["items"][0]["decision"]
    assert (shown["kind"], shown["classification"], shown["reviewer"]) == ("confirm", "B2", "rita")
    kinds = {
        b["name"]: b["kind"] for b in map(json.loads, run("bank", "list", "--json").splitlines())
    }
    assert kinds == {"benign": "negative", "known": "positive"}
    run("bank", "set", "benign", "--positive")
    assert json.loads(run("bank", "show", "benign"))["kind"] == "positive"
    assert run("cases", "disabled-entries", "--json").strip() == ""
    for command in ("list", "show", "decide", "disabled-entries", "reenable"):
        assert "Example" in runner.invoke(app, ["cases", command, "--help"]).output, command


def test_a_false_positive_asks_first_and_can_be_undone_without_javascript(
    sqlite_api: Api,
) -> None:
    """One key (a plain form POST, as `f` sends) records nothing: it asks to confirm; the
    confirmed false positive can be undone from the next page for review_undo_seconds; items
    are labelled by their id, not their position."""
    api, c = sqlite_api, sqlite_api.client
    case_id = open_case(api, 5, account="acct-9")
    open_case(api, 6, account="acct-9")
    first, second = core(api).cases.get(case_id).items
    assert sign_in(c, api.keys["reviewer"]) == "/review/queue"
    page = c.get(f"/review/cases/{case_id}")
    token = csrf_of(page.text)
    labels = re.findall(r'data-item="\d+">(item #\d+)</a>', page.text)
    assert labels == [f"item #{first.id}", f"item #{second.id}"]
    assert "item 1<" not in page.text

    url = f"/review/items/{first.id}/decision"
    asked = c.post(url, data={"choice": "false_positive", "csrf": token, "note": "benign"})
    assert asked.status_code == 200 and 'id="confirm-fp"' in asked.text
    assert 'name="confirmed" value="yes"' in asked.text and 'value="benign"' in asked.text
    assert core(api).cases.item(first.id).decision is None  # nothing recorded yet
    done = c.post(
        url,
        data={"choice": "false_positive", "csrf": token, "note": "benign", "confirmed": "yes"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].endswith(f"?decided={first.id}")
    decision = core(api).cases.item(first.id).decision
    assert decision is not None and decision.kind == "false_positive" and decision.note == "benign"
    following = c.get(done.headers["location"])
    assert 'id="undo-offer"' in following.text
    assert f'action="/review/items/{first.id}/undo"' in following.text
    assert "the preserved copy is discarded after that" in following.text
    # Someone else's page offers nothing to undo; a bad token undoes nothing.
    assert c.post(f"/review/items/{first.id}/undo", data={"csrf": "x"}).status_code == 403
    undone = c.post(f"/review/items/{first.id}/undo", data={"csrf": token}, follow_redirects=False)
    assert undone.status_code == 303
    assert undone.headers["location"] == f"/review/cases/{case_id}?item={first.id}"
    assert core(api).cases.item(first.id).decision is None
    assert core(api).cases.item(first.id).status == "pending"
    again = c.post(f"/review/items/{first.id}/undo", data={"csrf": token})
    assert again.status_code == 404 and "no decision to undo" in again.text
    # Other decisions are not destructive: no confirm step.
    r = c.post(url, data={"choice": "escalate", "csrf": token}, follow_redirects=False)
    assert r.status_code == 303

    # The reveal's answer carries what is left today, for the page to show.
    r = c.post(f"/review/items/{second.id}/reveal", headers={"X-CSRF-Token": token})
    limit = api.settings.review_daily_limit
    assert r.json()["remaining"] == limit - 1 and r.json()["revealed_today"] == 1


def test_undo_over_the_api(api: Api) -> None:
    c, reviewer = api.client, api.as_("reviewer")
    case_id = open_case(api, 7)
    (item,) = core(api).cases.get(case_id).items
    url = f"/v1/cases/items/{item.id}/decision"
    assert c.post(url, json={"kind": "escalate"}, headers=reviewer).status_code == 200
    assert c.post(url, json={"kind": "false_positive"}, headers=reviewer).status_code == 200
    r = c.post(url + "/undo", headers=api.as_("admin"))  # not the admin's decision
    assert r.status_code == 409 and "only the reviewer" in r.json()["error"]["hint"]
    r = c.post(url + "/undo", headers=reviewer)
    assert r.status_code == 200 and r.json()["decision"]["kind"] == "escalate"
    r = c.post(url + "/undo", headers=reviewer)
    assert r.status_code == 200 and r.json() == {"item": item.id, "decision": None}
    assert c.post(url + "/undo", headers=reviewer).status_code == 404
    assert c.post(url + "/undo", headers=api.as_("matcher")).status_code == 403
    actions = [a.action for a in core(api).audit.entries(20)]
    assert actions.count("case.decision_undone") == 2
