"""The v1 API in-process: matching, banks and entries, keys and scopes, limits, bad input,
observability. Runs on SQLite and PostgreSQL (the ``settings`` fixture)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace

import httpx
import pytest
from fastapi.testclient import TestClient
from test_api_support import QUIET, Api, api, make_keys, photo, sqlite_api, transformed

from amparo.api import create_app
from amparo.api.logs import JsonFormatter
from amparo.config import Settings
from amparo.signals.pdq_variants import CROPS
from clocks import ManualMonotonic

__all__ = ["api", "sqlite_api"]
pytestmark = QUIET

PDQ = "facd8bcb2a49bcebdec1985298d5fe84bcd006c187c598c720c3c087b3fdb318"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def _bank_with_photo(api: Api, bank: str = "known") -> dict[str, int]:
    c, cur = api.client, api.as_("curator")
    assert (
        c.post("/v1/banks", json={"name": bank, "source": "test"}, headers=cur).status_code == 201
    )
    r = c.post(
        f"/v1/banks/{bank}/media",
        files={"file": ("a.jpg", photo(), "image/jpeg")},
        params={"category": "A1", "tag": ["t1"]},
        headers=cur,
    )
    assert r.status_code == 200, r.text
    ids: dict[str, int] = r.json()["entry_ids"]
    assert set(ids) == {"pdq", "md5"}
    return ids


def _match(api: Api, data: bytes, who: str = "matcher") -> list[dict[str, object]]:
    r = api.client.post(
        "/v1/match", files={"file": ("q.jpg", data, "image/jpeg")}, headers=api.as_(who)
    )
    assert r.status_code == 200, r.text
    matches: list[dict[str, object]] = r.json()["matches"]
    return matches


def test_transformed_copy_matches_and_disabling_hides_it(api: Api) -> None:
    ids = _bank_with_photo(api)
    matches = _match(api, transformed())
    assert [(m["bank"], m["entry_id"], m["signal_type"]) for m in matches] == [
        ("known", ids["pdq"], "pdq")
    ]
    m = matches[0]
    # A matcher learns a band, never the distance (docs/security.md: the distance oracle).
    assert m["distance"] is None and m["band"] in {"close", "near"}
    exact = _match(api, transformed(), who="curator")[0]
    assert isinstance(exact["distance"], int) and 0 < exact["distance"] <= 31
    assert m["category"] == "A1"
    assert "signal" not in m and "pdq" not in json.dumps(m).replace('"pdq"', "")

    cur = api.as_("curator")
    until = "2099-01-01T00:00:00Z"
    r = api.client.post(
        "/v1/banks/known/entries/disable", json={"ids": [ids["pdq"]], "until": until}, headers=cur
    )
    assert r.json() == {"changed": 1}
    assert _match(api, transformed()) == []
    r = api.client.post("/v1/banks/known/entries/enable", json={"ids": [ids["pdq"]]}, headers=cur)
    assert r.json() == {"changed": 1}
    assert len(_match(api, transformed())) == 1
    # A pause that has passed no longer hides the entry.
    r = api.client.post(
        "/v1/banks/known/entries/disable",
        json={"ids": [ids["pdq"]], "until": "2001-01-01T00:00:00Z"},
        headers=cur,
    )
    assert len(_match(api, transformed())) == 1
    # Disabled until re-enabled, then removed.
    api.client.post("/v1/banks/known/entries/disable", json={"ids": [ids["pdq"]]}, headers=cur)
    assert _match(api, transformed()) == []
    r = api.client.post("/v1/banks/known/entries/remove", json={"ids": [ids["md5"]]}, headers=cur)
    assert r.json() == {"changed": 1}
    assert _match(api, photo()) == []


def test_exact_copy_matches_md5_and_pdq_and_bank_filter(api: Api) -> None:
    ids = _bank_with_photo(api)
    found = {(m["signal_type"], m["band"], m["distance"]) for m in _match(api, photo())}
    assert found == {("pdq", "exact", None), ("md5", "exact", None)}
    r = api.client.get(
        "/v1/lookup",
        params={"signal_type": "md5", "signal": MD5, "bank": "known"},
        headers=api.as_("matcher"),
    )
    assert r.json() == {"matches": [], "actions": []}
    r = api.client.post("/v1/banks", json={"name": "other"}, headers=api.as_("curator"))
    r = api.client.post(
        "/v1/match",
        files={"file": ("q.jpg", photo(), "image/jpeg")},
        params={"bank": "other"},
        headers=api.as_("matcher"),
    )
    assert r.json()["matches"] == []
    r = api.client.post(
        "/v1/match", files={"file": ("q.jpg", photo(), "image/jpeg")},
        params={"bank": "missing"}, headers=api.as_("matcher"),
    )  # fmt: skip
    assert r.status_code == 404 and r.json()["error"]["code"] == "bank_not_found"
    assert ids


def test_signal_batches_and_entries_with_metadata(api: Api) -> None:
    c, cur = api.client, api.as_("curator")
    c.post("/v1/banks", json={"name": "list"}, headers=cur)
    r = c.post(
        "/v1/banks/list/entries",
        json={
            "entries": [
                {"signal_type": "pdq", "signal": PDQ, "category": "B", "tags": ["x"]},
                {"signal_type": "md5", "signal": MD5.upper(), "source_id": "s1"},
            ]
        },
        headers=cur,
    )
    assert r.json()["added"] == 2
    r = c.post(
        "/v1/match/signals",
        json={
            "signals": [
                {"signal_type": "pdq", "signal": PDQ[:-1] + "9"},
                {"signal_type": "md5", "signal": MD5},
                {"signal_type": "sha1", "signal": "0" * 40},
            ]
        },
        headers=api.as_("matcher"),
    )
    results = r.json()["results"]
    assert [len(x["matches"]) for x in results] == [1, 1, 0]
    assert results[0]["matches"][0]["distance"] is None
    assert results[0]["matches"][0]["band"] == "close"
    assert results[0]["matches"][0]["category"] == "B"
    r = c.post(
        "/v1/compare",
        json={"signal_type": "pdq", "a": PDQ, "b": PDQ[:-1] + "9"},
        headers=api.as_("hasher"),
    )
    assert r.json() == {"signal_type": "pdq", "distance": 1, "match": True, "threshold": 31}


def test_banks_crud_import_export_and_audit(api: Api) -> None:
    c, cur = api.client, api.as_("curator")
    r = c.post("/v1/banks", json={"name": "b1", "pdq_threshold": 20}, headers=cur)
    assert r.status_code == 201 and r.json()["pdq_threshold"] == 20
    assert c.post("/v1/banks", json={"name": "b1"}, headers=cur).status_code == 409
    r = c.patch("/v1/banks/b1", json={"description": "hotline list"}, headers=cur)
    assert r.json()["description"] == "hotline list"
    assert c.post("/v1/banks/b1/disable", headers=cur).json()["enabled"] is False
    assert c.post("/v1/banks/b1/enable", headers=cur).json()["enabled"] is True
    text = f"{MD5}\n{'a' * 32}\nnot-a-hash\n"
    r = c.post(
        "/v1/banks/b1/import",
        params={"format": "text", "signal_type": "md5"},
        content=text,
        headers={**cur, "Content-Type": "text/plain"},
    )
    body = r.json()
    assert r.status_code == 200 and body["added"] == 2 and body["problem_count"] == 1
    assert body["read"] == 2 and body["problems"][0][0] == 3
    # Nothing valid in the list: a 400 with a hint and the problems, nothing changed.
    r = c.post(
        "/v1/banks/b1/import",
        params={"format": "text", "signal_type": "md5", "replace": "true"},
        content="not-a-hash\nzz\n",
        headers={**cur, "Content-Type": "text/plain"},
    )
    assert r.status_code == 400, r.text
    err = r.json()
    assert "no valid entry" in json.dumps(err) and "hint" in json.dumps(err)
    assert c.get("/v1/banks/b1", headers=cur).json()["entries"] == 2
    for fmt in ("text", "csv", "te", "vics"):
        r = c.get("/v1/banks/b1/export", params={"format": fmt}, headers=cur)
        assert r.status_code == 200 and MD5 in r.text.lower()
    assert c.get("/v1/banks", headers=api.as_("auditor")).json()[0]["entries"] == 2
    assert c.get("/v1/banks/b1/export", headers=api.as_("auditor")).status_code == 403
    assert c.delete("/v1/banks/b1", headers=cur).json() == {"deleted": "b1"}
    assert c.get("/v1/banks/b1", headers=cur).status_code == 404
    audit = c.get("/v1/audit", params={"target": "b1"}, headers=api.as_("auditor")).json()
    actions = [a["action"] for a in audit]
    assert actions[0] == "bank.delete" and "bank.import" in actions and "bank.create" in actions
    assert {a["actor"] for a in audit} == {"key:curator"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/banks", {"admin", "curator", "auditor"}),
        ("GET", "/v1/banks/x/export", {"admin", "curator"}),
        ("POST", "/v1/banks/x/entries", {"admin", "curator"}),
        ("GET", "/v1/lookup?signal_type=md5&signal=" + MD5, {"admin", "curator", "matcher"}),
        ("GET", "/v1/audit", {"admin", "auditor"}),
        ("GET", "/m/raw_lookup?signal_type=md5&signal=" + MD5, {"admin", "curator", "matcher"}),
        ("GET", "/c/banks", {"admin", "curator", "auditor"}),
    ],
)
def test_scopes(sqlite_api: Api, method: str, path: str, allowed: set[str]) -> None:
    for who in sqlite_api.keys:
        r = sqlite_api.client.request(method, path, headers=sqlite_api.as_(who), json={})
        if who in allowed:
            assert r.status_code != 403, (who, r.text)
        else:
            assert r.status_code == 403, (who, r.text)
            assert r.json()["error"]["code"] == "permission_denied"


def test_unauthenticated_requests_are_refused(sqlite_api: Api) -> None:
    c = sqlite_api.client
    assert c.get("/healthz").status_code == 200
    for path in ("/v1/banks", "/metrics", "/readyz", "/status", "/openapi.json", "/docs"):
        r = c.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "unauthenticated"
    assert c.get("/v1/banks", headers={"X-API-Key": "amp_nope"}).status_code == 401
    good = sqlite_api.keys["auditor"]
    assert c.get("/v1/banks", headers={"X-API-Key": good}).status_code == 200
    assert c.get("/v1/banks", headers={"X-API-Key": good[:-1] + "x"}).status_code == 401


def test_rate_limit_returns_429_with_retry_after(sqlite_settings: Settings) -> None:
    # Half a token a second, a burst of three; time moves only when the test says.
    settings = replace(sqlite_settings, api_rate_limits="matcher=0.5:3")
    keys = make_keys(settings)
    clock = ManualMonotonic()
    with TestClient(create_app(settings, clock=clock)) as c:
        headers = {"Authorization": f"Bearer {keys['matcher']}"}

        def lookup() -> httpx.Response:
            params = {"signal_type": "md5", "signal": MD5}
            return c.get("/v1/lookup", params=params, headers=headers)

        assert [lookup().status_code for _ in range(5)] == [200, 200, 200, 429, 429]
        r = lookup()
        assert r.status_code == 429 and r.headers["retry-after"] == "2"  # one token: 2 s
        assert r.json()["error"]["code"] == "rate_limited"
        clock.advance(2.0)
        assert [lookup().status_code for _ in range(2)] == [200, 429]
        # A batch costs one token an item: one larger than the burst can never pass.
        body = {"signals": [{"signal_type": "md5", "signal": MD5}] * 10}
        r = c.post("/v1/match/signals", json=body, headers={"X-API-Key": keys["curator"]})
        assert r.status_code == 200  # curators are not limited unless named
        clock.advance(60.0)  # the bucket is full again
        r = c.post("/v1/match/signals", json=body, headers=headers)
        assert r.status_code == 400 and "batch" in r.json()["error"]["message"]


BAD_MEDIA = [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 50, 400, "corrupt_media"),
    (photo()[:3000], 400, "corrupt_media"),
    (b"just some text, not an image", 415, "unsupported_media"),
    (b"PK\x03\x04" + b"\x00" * 100, 415, "unsupported_media"),
]


@pytest.mark.parametrize(("data", "status", "code"), BAD_MEDIA)
def test_bad_media_is_a_4xx_with_a_json_error(
    sqlite_api: Api, data: bytes, status: int, code: str
) -> None:
    for path in ("/v1/hash", "/v1/match"):
        r = sqlite_api.client.post(
            path, files={"file": ("x.jpg", data, "image/jpeg")}, headers=sqlite_api.as_("admin")
        )
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code


def test_decompression_bomb_and_size_limits(sqlite_settings: Settings) -> None:
    from PIL import Image

    big = Image.new("L", (4000, 4000))
    import io

    buf = io.BytesIO()
    big.save(buf, "PNG")
    settings = replace(
        sqlite_settings, max_image_pixels=1_000_000, api_max_upload_bytes=200_000,
        api_max_json_bytes=2_000,
    )  # fmt: skip
    keys = make_keys(settings)
    with TestClient(create_app(settings)) as c:
        h = {"Authorization": f"Bearer {keys['admin']}"}
        r = c.post("/v1/hash", files={"file": ("b.png", buf.getvalue(), "image/png")}, headers=h)
        assert r.status_code == 413 and r.json()["error"]["code"] == "media_too_large"
        r = c.post("/v1/hash", files={"file": ("p.jpg", b"\xff" * 300_000)}, headers=h)
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        body = {"signals": [{"signal_type": "md5", "signal": MD5}] * 100}
        r = c.post("/v1/match/signals", json=body, headers=h)
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/v1/lookup?signal_type=pdq&signal=xyz", None, 400),
        ("GET", "/v1/lookup?signal_type=nope&signal=abc", None, 400),
        ("POST", "/v1/match/signals", {"signals": [{"signal_type": "md5", "signal": "zz"}]}, 400),
        ("POST", "/v1/match/signals", {"signals": "nope"}, 400),
        ("POST", "/v1/compare", {"signal_type": "pdq", "a": PDQ, "b": "short"}, 400),
        ("POST", "/v1/banks", {"name": "has space"}, 400),
        ("GET", "/v1/banks/missing", None, 404),
        ("POST", "/v1/banks/missing/entries/remove", {"ids": [1]}, 404),
        ("POST", "/v1/hash", None, 400),
        ("GET", "/v1/nothing-here", None, 404),
        ("DELETE", "/healthz", None, 405),
        # Ids past the database's 64-bit integers: a 400, not an overflow deep in the driver.
        ("GET", f"/v1/cases/{2**64}", None, 400),
        ("GET", f"/v1/cases?offset={2**64}", None, 400),
        ("POST", f"/v1/cases/items/{2**64}/decision", {"kind": "escalate"}, 400),
        ("GET", f"/v1/evidence?case_id={2**64}", None, 400),
        ("GET", f"/v1/evidence?before_id={2**64}", None, 400),
        ("GET", f"/v1/reports?case_id={2**64}", None, 400),
        ("GET", f"/v1/rules/r?version={2**40}", None, 400),
    ],
)
def test_malformed_requests_get_json_errors(
    sqlite_api: Api, method: str, path: str, body: object, status: int
) -> None:
    r = sqlite_api.client.request(method, path, json=body, headers=sqlite_api.as_("admin"))
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] and error["message"]


def test_invalid_json_body(sqlite_api: Api) -> None:
    r = sqlite_api.client.post(
        "/v1/match/signals",
        content=b"{not json",
        headers={**sqlite_api.as_("admin"), "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"


def test_url_fetching_refuses_loopback(sqlite_api: Api) -> None:
    r = sqlite_api.client.post(
        "/v1/hash", params={"url": "http://127.0.0.1:1/x.jpg"}, headers=sqlite_api.as_("admin")
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "url_refused"
    r = sqlite_api.client.post(
        "/v1/hash", params={"url": "file:///etc/passwd"}, headers=sqlite_api.as_("admin")
    )
    assert r.status_code == 400


def test_metrics_readiness_and_request_ids(api: Api) -> None:
    _bank_with_photo(api)
    _match(api, transformed())
    c, h = api.client, api.as_("auditor")
    r = c.get("/readyz", headers=h)
    assert r.status_code == 200 and r.json()["ready"] is True
    text = c.get("/metrics", headers=h).text
    assert (
        'amparo_http_request_duration_seconds_bucket{le="0.001",method="POST",route="/v1/match"'
        in text
    )
    assert 'amparo_matches_total{bank="known",signal_type="pdq"} 1.0' in text
    # One PDQ entry, plus the variants stored with a photo added as media: its crops, its
    # true mirror and (had it borders) its trimmed picture.
    rows = re.search(r"^amparo_index_entries (\d+)\.0$", text, re.M)
    assert rows is not None and 1 <= int(rows.group(1)) <= 1 + len(CROPS) + 2
    assert "amparo_index_age_seconds" in text
    status = c.get("/v1/index/status", headers=h).json()
    assert status["signal_types"]["pdq"]["entries"] == int(rows.group(1))  # rows, as above
    assert status["current"] is True
    r = c.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = c.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert len(r.headers["x-request-id"]) == 32


def test_access_log_is_json_with_request_id(
    sqlite_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="amparo.access"):
        sqlite_api.client.get(
            "/v1/banks", headers={**sqlite_api.as_("auditor"), "X-Request-ID": "r1"}
        )
    records = [r for r in caplog.records if r.name == "amparo.access"]
    line = json.loads(JsonFormatter().format(records[-1]))
    assert line["route"] == "/v1/banks" and line["status"] == 200 and line["key"] == "auditor"
    assert "duration_ms" in line


def test_out_of_range_and_deeply_nested_input_is_a_4xx(sqlite_api: Api) -> None:
    c, cur = sqlite_api.client, sqlite_api.as_("curator")
    assert c.post("/v1/banks", json={"name": "b"}, headers=cur).status_code in (200, 201)
    assert c.get(f"/c/bank/b/content/{2**70}", headers=cur).status_code == 400
    r = c.post("/v1/banks/b/entries/disable", json={"ids": [2**70]}, headers=cur)
    assert 400 <= r.status_code < 500
    nested = "[" * 100_000 + "]" * 100_000
    r = c.post(
        "/v1/banks/b/import",
        params={"format": "vics"},
        content=nested,
        headers={**cur, "Content-Type": "application/json"},
    )
    assert 400 <= r.status_code < 500, r.text
