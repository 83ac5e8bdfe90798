"""Property-based run of the whole OpenAPI document (schemathesis, every check): whatever the
input, no 5xx and every response matches the schema.

Bounded for CI (AMPARO_SCHEMA_EXAMPLES examples an operation, 10 by default, a fixed seed);
``benchmarks/schemathesis_run.py`` runs the same test with 30 and records the figures that
docs/security.md quotes."""

from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
from pathlib import Path

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from amparo.api import create_app
from amparo.app import Amparo
from amparo.banks.model import BankInfo, EntryRecord
from amparo.config import load_settings
from amparo.keys import KeyService

warnings.filterwarnings("ignore", message=".*httpx2.*")

_HOME = Path(tempfile.mkdtemp(prefix="amparo-schema-"))
_SETTINGS = load_settings(env={}, overrides={"home": _HOME, "api_public_docs": True})
with Amparo(_SETTINGS) as _amparo:
    _KEY = KeyService(_amparo.store).create("fuzz", ["admin"], actor="test").secret
    _amparo.banks.create(BankInfo(name="known"), actor="test")
    _amparo.banks.add_entries("known", [EntryRecord("md5", "d41d8cd98f00b204e9800998ecf8427e")])
APP = create_app(_SETTINGS)
# Generated url= values must never leave the machine: every name resolves to loopback,
# which the fetcher refuses.
APP.state.service.fetcher.resolver = lambda _host, _port: ["127.0.0.1"]

schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# Every check but positive_data_acceptance: the document cannot say that a string is a valid
# hash *of the signal_type given* or that bytes are a decodable image, so a schema-valid but
# meaningless value is rightly a 400/415/422 with a hint (the negative checks still run).


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("AMPARO_SCHEMA_EXAMPLES", "10")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors_and_responses_match_schema(case: schemathesis.Case) -> None:
    excluded = [positive_data_acceptance]
    if (case.operation.method.upper(), case.operation.path) in _ANY_FILE:
        excluded.append(negative_data_rejection)
    case.call_and_validate(headers={"Authorization": f"Bearer {_KEY}"}, excluded_checks=excluded)


# Multipart parts are bytes: a "boolean" that schemathesis puts in a file field is the five
# bytes b"false", which is a file like any other where any file is accepted (evidence keeps
# whatever a person preserves), so it cannot be "negative data" there.
_ANY_FILE = {("POST", "/v1/evidence")}


# The conventions the property run above relies on, as plain regression tests.

_OPENAPI = APP.openapi()


def _client() -> TestClient:
    return TestClient(APP)


def test_openapi_document_is_valid_for_3_0_and_3_1_tools() -> None:
    problems = _OPENAPI["components"]["schemas"]["ImportOut"]["properties"]["problems"]
    assert "prefixItems" not in json.dumps(problems)  # JSON Schema 2020-12 only
    assert problems["items"]["type"] == "array" and "items" in problems["items"]
    export = _OPENAPI["paths"]["/v1/audit/export"]["get"]["responses"]["200"]["content"]
    assert list(export) == ["application/x-ndjson"]


def test_options_and_405_name_every_method_of_the_resource() -> None:
    h = {"Authorization": f"Bearer {_KEY}"}
    with _client() as c:
        r = c.options("/v1/banks/known", headers=h)
        assert r.status_code == 204
        documented = {m.upper() for m in _OPENAPI["paths"]["/v1/banks/{name}"]}
        assert set(r.headers["allow"].split(", ")) == documented | {"OPTIONS"}
        r = c.put("/v1/banks/known", headers=h)
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        assert set(r.headers["allow"].split(", ")) == documented | {"OPTIONS"}
        # A literal path wins over a template that also matches it.
        outbox = {m.upper() for m in _OPENAPI["paths"]["/v1/webhooks/outbox"]}
        r = c.options("/v1/webhooks/outbox", headers=h)
        assert set(r.headers["allow"].split(", ")) == outbox | {"OPTIONS"}
        assert c.options("/no/such/route", headers=h).status_code == 404


def test_request_bodies_do_not_coerce_mistyped_values() -> None:
    h = {"Authorization": f"Bearer {_KEY}"}
    with _client() as c:
        r = c.post("/v1/banks", json={"name": "coerced", "dihedral": 0}, headers=h)
        assert r.status_code == 400 and "dihedral" in r.json()["error"]["message"]
        r = c.post("/c/banks", json={"name": "COERCED", "enabled": 1}, headers=h)
        assert r.status_code == 400
        r = c.post(
            "/v1/banks/known/entries/disable",
            json={"ids": [1], "until": "2100-01-01T00:00:00Z"},
            headers=h,
        )
        assert r.status_code == 200  # a time is still given as ISO 8601 text


def test_docs_page_loads_nothing_from_elsewhere() -> None:
    with _client() as c:
        r = c.get("/docs")
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "http" not in csp
        assert "cdn" not in r.text and "http://" not in r.text and "https://" not in r.text
        assert "<script>" not in r.text  # no inline script: the CSP allows none
        for src in re.findall(r'(?:src|href)="([^"]+)"', r.text):
            assert src.startswith("/docs/assets/"), src
            asset = c.get(src)
            assert asset.status_code == 200 and asset.content, src
        assert b"SwaggerUIBundle" in c.get("/docs/assets/swagger-ui-bundle.js").content
        assert c.get("/docs/assets/..%2Fcore.py").status_code == 404
        assert c.get("/docs/assets/core.py").status_code == 404
