"""The fast lanes (plain ``GET /m/raw_lookup`` and ``GET /v1/lookup``) enter the app at
Amparo's middleware, ahead of FastAPI's own stack: what every request gets (key check, request
id, body limit, metrics by route template, access log, JSON errors) they still get."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from test_api_support import QUIET, Api, sqlite_api

from amparo.actions import Rule
from amparo.api.app import AmparoAPI
from amparo.api.logs import JsonFormatter
from amparo.app import Amparo

__all__ = ["sqlite_api"]
pytestmark = QUIET

PDQ = "facd8bcb2a49bcebdec1985298d5fe84bcd006c187c598c720c3c087b3fdb318"
LANES = ["/m/raw_lookup", "/v1/lookup"]


class _Lines(logging.Handler):
    """The access log's lines as they are written (formatted in the request's context)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def access() -> Iterator[_Lines]:
    logger = logging.getLogger("amparo.access")
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _bank_with_pdq(api: Api) -> int:
    cur = api.as_("curator")
    assert api.client.post("/v1/banks", json={"name": "known"}, headers=cur).status_code == 201
    r = api.client.post("/c/bank/known/signal", json={"pdq": PDQ}, headers=cur)
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


def test_the_app_is_amparos_and_takes_the_lanes_first(sqlite_api: Api) -> None:
    app = sqlite_api.client.app
    assert isinstance(app, AmparoAPI)
    assert app._lane_entry is not None
    assert app._lanes == {("GET", path) for path in LANES}


@pytest.mark.parametrize("path", LANES)
def test_a_lane_answer_has_its_request_id_metrics_and_access_line(
    sqlite_api: Api, path: str, access: _Lines
) -> None:
    entry = _bank_with_pdq(sqlite_api)
    c = sqlite_api.client
    headers = {**sqlite_api.as_("matcher"), "X-Request-ID": "lane-1"}
    r = c.get(path, params={"signal_type": "pdq", "signal": PDQ}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "lane-1"
    assert r.headers["content-type"] == "application/json"
    matches = r.json()["matches"]
    assert matches == [entry] if path == "/m/raw_lookup" else matches[0]["entry_id"] == entry
    line = access.lines[-1]
    assert line["request_id"] == "lane-1" and line["route"] == path
    assert line["status"] == 200 and line["key"] == "matcher" and line["method"] == "GET"
    assert isinstance(line["duration_ms"], float)
    scrape = c.get("/metrics", headers=sqlite_api.as_("auditor")).text
    assert (
        f'amparo_http_request_duration_seconds_count{{method="GET",route="{path}",status="200"}}'
        in scrape
    )


@pytest.mark.parametrize("path", LANES)
def test_a_lane_without_a_key_is_refused_by_the_full_app(
    sqlite_api: Api, path: str, access: _Lines
) -> None:
    c = sqlite_api.client
    r = c.get(path, params={"signal_type": "pdq", "signal": PDQ})
    wrong = c.get(path, params={"signal_type": "pdq", "signal": PDQ}, headers={"X-API-Key": "nope"})
    for refused in (r, wrong):
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthenticated"
        assert refused.headers["www-authenticate"] == "Bearer"
        assert len(refused.headers["x-request-id"]) == 32
    lines = access.lines[-2:]
    assert [line["status"] for line in lines] == [401, 401]
    assert [line["request_id"] for line in lines] == [
        r.headers["x-request-id"],
        wrong.headers["x-request-id"],
    ]
    assert lines[-1]["route"] == path and lines[-1]["key"] is None


@pytest.mark.parametrize("path", LANES)
def test_a_lane_keeps_the_body_limit_and_the_errors_of_its_route(
    sqlite_api: Api, path: str
) -> None:
    c, mat = sqlite_api.client, sqlite_api.as_("matcher")
    big = c.request(
        "GET",
        path,
        params={"signal_type": "pdq", "signal": PDQ},
        headers={**mat, "Content-Type": "application/json"},
        content=b"x" * (sqlite_api.settings.api_max_json_bytes + 1),
    )
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    assert "x-request-id" in big.headers
    bad = c.get(path, params={"signal_type": "pdq", "signal": "zz"}, headers=mat)
    assert bad.status_code == 400 and bad.json()["error"]["code"]
    post = c.post(path, params={"signal_type": "pdq", "signal": PDQ}, headers=mat)
    assert post.status_code == 405 and post.json()["error"]["code"] == "method_not_allowed"


def test_recheck_rules_sees_another_process_rule_at_once(sqlite_api: Api) -> None:
    with Amparo(sqlite_api.settings) as here, Amparo(sqlite_api.settings) as there:
        assert here.checks.rules_active() is False
        assert here.checks.rules_known_inactive()
        there.actions.add_rule(
            Rule.from_json({"name": "to-review", "actions": ["review"]}), actor="t"
        )
        here.checks.recheck_rules()
        assert not here.checks.rules_known_inactive()


def test_a_worker_is_not_ready_until_its_entry_table_is_loaded(sqlite_api: Api) -> None:
    # A load balancer (or a benchmark) that waits for /readyz then gets workers that answer
    # from memory, not ones still reading entries from the database.
    c, h = sqlite_api.client, sqlite_api.as_("auditor")
    ready = c.get("/readyz", headers=h)
    assert ready.status_code == 200 and ready.json()["entries_loaded"] is True
    entries = c.app.state.service.amparo.matcher._entry_table  # type: ignore[attr-defined]
    table, entries.table = entries.table, None  # as while the loading thread runs
    try:
        loading = c.get("/readyz", headers=h)
        assert loading.status_code == 503
        assert loading.json()["entries_loaded"] is False and loading.json()["ready"] is False
    finally:
        entries.table = table
    assert c.get("/readyz", headers=h).status_code == 200
