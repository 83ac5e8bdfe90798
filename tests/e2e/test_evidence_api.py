"""/v1/evidence in-process, on SQLite and PostgreSQL: who may see what, logged reads, holds."""

from __future__ import annotations

import hashlib
import os

from test_api_support import QUIET, Api, api

from amparo.app import Amparo
from amparo.keys import KeyService

__all__ = ["api"]
pytestmark = QUIET


def _reader(api: Api) -> dict[str, str]:
    """Headers of a key with only the evidence-reader scope (made once per test database)."""
    if "evidence-reader" not in api.keys:
        with Amparo(api.settings) as amparo:
            made = KeyService(amparo.store).create("reader", ["evidence-reader"], actor="test")
        api.keys["evidence-reader"] = made.secret
    return api.as_("evidence-reader")


def _preserve(api: Api, data: bytes, **params: object) -> dict[str, object]:
    r = api.client.post(
        "/v1/evidence",
        files={"file": ("upload.bin", data, "application/octet-stream")},
        params={"reason": "manual: ticket 7", "account_id": "acct-1", **params},
        headers=api.as_("admin"),
    )
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def test_preserve_list_show_and_read(api: Api) -> None:
    data = os.urandom(10_000)
    item = _preserve(api, data, upload_id="u-1", case_id=5)
    assert item["sha256"] == hashlib.sha256(data).hexdigest() and item["size"] == 10_000
    assert item["source"] == {
        "kind": "api",
        "account_id": "acct-1",
        "upload_id": "u-1",
        "file_name": "upload.bin",
    }
    assert item["case_id"] == 5 and item["preserved_by"] == "key:admin"
    c = api.client
    listed = c.get("/v1/evidence", headers=api.as_("auditor")).json()
    assert [i["id"] for i in listed] == [item["id"]]
    by_hash = c.get("/v1/evidence", params={"sha256": item["sha256"]}, headers=api.as_("reviewer"))
    assert [i["id"] for i in by_hash.json()] == [item["id"]]
    shown = c.get(f"/v1/evidence/{item['id']}", headers=api.as_("reviewer")).json()
    assert [s["reason"] for s in shown["sighting_log"]] == ["manual: ticket 7"]

    r = c.get(f"/v1/evidence/{item['id']}/content", headers=_reader(api))
    assert r.status_code == 200 and r.content == data
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-amparo-sha256"] == item["sha256"]
    log = c.get("/v1/audit", headers=api.as_("auditor")).json()
    reads = [e for e in log if e["action"] == "evidence.read"]
    assert [(e["actor"], e["target"]) for e in reads] == [("key:reader", f"evidence:{item['id']}")]


def test_scopes(api: Api) -> None:
    item = _preserve(api, b"some content")
    c = api.client
    # A reviewer sees media only through /review (blurred, or clear after a counted reveal):
    # the clear bytes are not one API call away from a reviewer key.
    for who in ("matcher", "hasher", "curator", "auditor", "reviewer"):
        r = c.get(f"/v1/evidence/{item['id']}/content", headers=api.as_(who))
        assert r.status_code == 403, who
        assert "evidence-reader" in r.json()["error"]["hint"]
    assert c.get(f"/v1/evidence/{item['id']}/content", headers=_reader(api)).status_code == 200
    log = c.get("/v1/audit", headers=api.as_("auditor")).json()
    assert [e["actor"] for e in log if e["action"] == "evidence.read"] == ["key:reader"]
    for who in ("matcher", "hasher", "curator"):
        assert c.get("/v1/evidence", headers=api.as_(who)).status_code == 403, who
    for who in ("reviewer", "auditor", "curator"):
        r = c.post("/v1/evidence", files={"file": ("a", b"x", "text/plain")}, headers=api.as_(who))
        assert r.status_code == 403, who
        r = c.post(f"/v1/evidence/{item['id']}/hold", json={"reason": "x"}, headers=api.as_(who))
        assert r.status_code == 403, who
    assert c.get("/v1/evidence").status_code == 401
    assert c.get(f"/v1/evidence/{item['id']}/content", headers=api.as_("admin")).status_code == 200


def test_hold_release_discard_and_errors(api: Api) -> None:
    item = _preserve(api, b"held content")
    c, admin = api.client, api.as_("admin")
    r = c.post(f"/v1/evidence/{item['id']}/hold", json={"reason": "court order"}, headers=admin)
    assert r.status_code == 200 and r.json()["legal_hold"] is True
    assert r.json()["hold_reason"] == "court order"
    r = c.post(f"/v1/evidence/{item['id']}/discard", json={"reason": "fp"}, headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    assert c.post(f"/v1/evidence/{item['id']}/release", headers=admin).json()["legal_hold"] is False
    r = c.post(f"/v1/evidence/{item['id']}/discard", json={"reason": "fp"}, headers=admin)
    assert r.status_code == 200 and r.json()["purge_reason"] == "discarded: fp"
    r = c.get(f"/v1/evidence/{item['id']}/content", headers=admin)
    assert r.status_code == 404 and "gone" in r.json()["error"]["message"]
    assert c.get("/v1/evidence/999", headers=admin).status_code == 404
    assert c.get("/v1/evidence/0", headers=admin).status_code in (400, 422)
    r = c.post(f"/v1/evidence/{item['id']}/hold", json={"reason": ""}, headers=admin)
    assert r.status_code in (400, 422)
    r = c.get("/v1/evidence", params={"sha256": "nothex"}, headers=admin)
    assert r.status_code in (400, 422)


def test_damaged_content_is_an_error_not_data(api: Api) -> None:
    from amparo.app import Amparo
    from amparo.evidence.backends import blob_key

    item = _preserve(api, os.urandom(5000))
    with Amparo(api.settings) as amparo:
        stored = amparo.evidence.records.get(int(str(item["id"])))
        assert stored is not None
        path = api.settings.home / "evidence" / blob_key(stored.uuid)
    blob = bytearray(path.read_bytes())
    blob[100] ^= 1
    path.write_bytes(bytes(blob))
    r = api.client.get(f"/v1/evidence/{item['id']}/content", headers=_reader(api))
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "evidence_integrity"
    assert f"evidence item {item['id']}" in r.json()["error"]["message"]
