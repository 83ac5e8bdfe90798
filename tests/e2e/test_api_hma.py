"""HMA (Open Media Match) compatibility: each route with the request shapes HMA's own tests
and docs use, and the response shapes an HMA client reads."""

from __future__ import annotations

from datetime import datetime, timedelta

from test_api_support import QUIET, Api, api, photo, sqlite_api, transformed

__all__ = ["api", "sqlite_api"]
pytestmark = QUIET

SPECIMEN1 = "facd8bcb2a49bcebdec1985298d5fe84bcd006c187c598c720c3c087b3fdb318"
SPECIMEN2 = "facd8bcb2a49bcebdec1985228d5ae84bcd006c187c598c720c2b087b3fdb318"


def test_status(sqlite_api: Api) -> None:
    r = sqlite_api.client.get("/status", headers=sqlite_api.as_("matcher"))
    assert r.status_code == 200 and r.text == "I-AM-ALIVE"


def test_banks_create_list_update_delete(api: Api) -> None:
    c, h = api.client, api.as_("curator")
    assert c.get("/c/banks", headers=h).json() == []
    r = c.post("/c/banks", json={"name": "MY_TEST_BANK_01"}, headers=h)
    assert r.status_code == 201
    assert r.json() == {"matching_enabled_ratio": 1.0, "name": "MY_TEST_BANK_01"}
    assert c.get("/c/banks", headers=h).json() == [r.json()]
    assert c.get("/c/bank/MY_TEST_BANK_01", headers=h).json() == r.json()
    r = c.put("/c/bank/MY_TEST_BANK_01", json={"enabled": False}, headers=h)
    assert r.status_code == 200 and r.json()["matching_enabled_ratio"] == 0
    r = c.put("/c/bank/MY_TEST_BANK_01", json={"enabled_ratio": 1.0}, headers=h)
    assert r.json()["matching_enabled_ratio"] == 1.0
    # Differences, documented: partial ratios and renames are refused, not half-done.
    assert (
        c.put("/c/bank/MY_TEST_BANK_01", json={"enabled_ratio": 0.5}, headers=h).status_code == 400
    )
    assert c.put("/c/bank/MY_TEST_BANK_01", json={"name": "OTHER"}, headers=h).status_code == 400
    assert c.get("/c/bank/NOPE", headers=h).status_code == 404
    assert c.delete("/c/bank/MY_TEST_BANK_01", headers=h).json() == {"message": "Done"}
    assert c.delete("/c/bank/MY_TEST_BANK_01", headers=h).status_code == 200


def test_content_upload_signal_lookup_and_disable(api: Api) -> None:
    c, cur, mat = api.client, api.as_("curator"), api.as_("matcher")
    c.post("/c/banks", json={"name": "BANK_A"}, headers=cur)
    c.post("/c/banks", json={"name": "BANK_B"}, headers=cur)
    r = c.post(
        "/c/bank/BANK_A/content",
        files={"photo": ("a.jpg", photo(), "image/jpeg")},
        headers=cur,
    )
    assert r.status_code == 200, r.text
    added = r.json()
    assert set(added) == {"id", "signals"} and set(added["signals"]) == {"pdq", "md5"}
    content_id = added["id"]
    pdq = added["signals"]["pdq"]
    r = c.post("/c/bank/BANK_B/signal", json={"pdq": pdq}, headers=cur)
    assert r.status_code == 200 and r.json()["signals"] == {"pdq": pdq}

    # Lookup by signal: {bank: [{bank_content_id, distance}]}, distance a string as in HMA.
    r = c.get("/m/lookup", params={"signal": pdq, "signal_type": "pdq"}, headers=mat)
    assert set(r.json()) == {"BANK_A", "BANK_B"}
    assert r.json()["BANK_A"] == [{"bank_content_id": content_id, "distance": "0"}]
    r = c.get(
        "/m/lookup", params={"signal": pdq, "signal_type": "pdq", "banks": "BANK_A"}, headers=mat
    )
    assert set(r.json()) == {"BANK_A"}
    r = c.get(
        "/m/lookup",
        params={"signal": pdq, "signal_type": "pdq", "banks": "NON_EXISTENT_BANK"},
        headers=mat,
    )
    assert r.status_code == 200 and r.json() == {}

    # Raw lookups.
    r = c.get("/m/raw_lookup", params={"signal": pdq, "signal_type": "pdq"}, headers=mat)
    assert len(r.json()["matches"]) == 2 and content_id in r.json()["matches"]
    r = c.get(
        "/m/raw_lookup",
        params={"signal": pdq, "signal_type": "pdq", "include_distance": True, "banks": "BANK_A"},
        headers=mat,
    )
    assert r.json() == {"matches": [{"bank_content_id": content_id, "distance": "0"}]}
    # The fast lane (plain requests) and the full route (any other parameter, here a dummy
    # one) answer alike, errors included.
    for extra in ({}, {"include_distance": "true"}, {"include_distance": "0"}):
        fast = c.get(
            "/m/raw_lookup", params={"signal": pdq, "signal_type": "pdq", **extra}, headers=mat
        )
        full = c.get(
            "/m/raw_lookup",
            params={"signal": pdq, "signal_type": "pdq", "x": "1", **extra},
            headers=mat,
        )
        assert fast.status_code == full.status_code == 200
        assert fast.json() == full.json() and len(fast.json()["matches"]) == 2
    bad = c.get("/m/raw_lookup", params={"signal": "zz", "signal_type": "pdq"}, headers=mat)
    assert bad.status_code == 400 and bad.json()["error"]["code"]
    nokey = c.get("/m/raw_lookup", params={"signal": pdq, "signal_type": "pdq"})
    assert nokey.status_code == 401
    flag = c.get(
        "/m/raw_lookup", params={"signal": pdq, "signal_type": "pdq", "include_distance": "maybe"},
        headers=mat,
    )  # fmt: skip
    assert flag.status_code == 400

    # POST lookup of a transformed upload: {signal_type: {bank: [...]}}.
    r = c.post("/m/lookup", files={"photo": ("q.jpg", transformed(), "image/jpeg")}, headers=mat)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["pdq"]) == {"BANK_A", "BANK_B"} and body["md5"] == {}
    assert 0 < int(body["pdq"]["BANK_A"][0]["distance"]) <= 31

    # Disable until a time (HMA's disable_until_ts), then the match is gone.
    until = int((datetime.now() + timedelta(days=365)).timestamp())
    r = c.put(f"/c/bank/BANK_A/content/{content_id}", json={"disable_until_ts": until}, headers=cur)
    assert r.status_code == 200 and r.json()["disable_until_ts"] == until
    r = c.get("/m/lookup", params={"signal": pdq, "signal_type": "pdq"}, headers=mat)
    assert set(r.json()) == {"BANK_B"}
    r = c.put(
        f"/c/bank/BANK_A/content/{content_id}", json={"disable_until_ts": 9999999999}, headers=cur
    )
    assert r.status_code == 400
    assert c.get(f"/c/bank/BANK_A/content/{content_id}", headers=cur).json()["id"] == content_id
    assert c.delete(f"/c/bank/BANK_A/content/{content_id}", headers=cur).json() == {"deleted": 1}


def test_content_metadata(sqlite_api: Api) -> None:
    c, cur = sqlite_api.client, sqlite_api.as_("curator")
    c.post("/c/banks", json={"name": "NEW_BANK"}, headers=cur)
    r = c.post(
        "/c/bank/NEW_BANK/content",
        json={"metadata": {"invalid_metadata": 5}},
        headers=cur,
    )
    assert r.status_code == 400
    assert c.post("/c/bank/NEW_BANK/content", headers=cur).status_code == 400
    r = c.post("/c/bank/NEW_BANK/signal", json={"pdq": "0" * 64}, headers=cur)
    assert r.status_code == 200 and r.json()["signals"] == {"pdq": "0" * 64}


def test_hash_compare_and_index_status(sqlite_api: Api) -> None:
    c, h = sqlite_api.client, sqlite_api.as_("hasher")
    r = c.post("/h/hash", files={"photo": ("a.jpg", photo(), "image/jpeg")}, headers=h)
    assert r.status_code == 200 and set(r.json()) == {"pdq", "md5"}
    r = c.post(
        "/h/hash", params={"types": "pdq"}, files={"photo": ("a.jpg", photo(), "image/jpeg")},
        headers=h,
    )  # fmt: skip
    assert set(r.json()) == {"pdq"}
    assert c.post("/h/hash", headers=h).status_code == 400
    assert c.get("/h/hash", params={"url": "http://127.0.0.1/x.jpg"}, headers=h).status_code == 400

    r = c.post("/m/compare", json={"pdq": [SPECIMEN1, SPECIMEN2]}, headers=h)
    assert r.json() == {"pdq": [True, {"distance": 9}]}
    for bad in (
        ["banana"],
        {"pdq": "banana"},
        {"pdq": []},
        {"pdq": ["banana", "banana"]},
        {"pdq": [SPECIMEN1, SPECIMEN2, SPECIMEN1]},
    ):
        assert c.post("/m/compare", json=bad, headers=h).status_code == 400, bad

    m = sqlite_api.as_("matcher")
    status = c.get("/m/index/status", headers=m).json()
    assert status["pdq"] == {"present": True, "built_to": status["pdq"]["built_to"], "size": 0}
    assert set(c.get("/m/index/status", params={"signal_type": "pdq"}, headers=m).json()) == {"pdq"}
    assert c.get("/m/index/status", params={"signal_type": "x"}, headers=m).status_code == 400
