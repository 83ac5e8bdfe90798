"""Property-based run of the whole OpenAPI document (schemathesis): whatever the input, no 5xx
and every response matches the schema. Bounded so it runs in well under a minute."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

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
    _amparo.create_bank(BankInfo(name="known"), actor="test")
    _amparo.add_entries("known", [EntryRecord("md5", "d41d8cd98f00b204e9800998ecf8427e")])
APP = create_app(_SETTINGS)
# Generated url= values must never leave the machine: every name resolves to loopback,
# which the fetcher refuses.
APP.state.service.fetcher.resolver = lambda _host, _port: ["127.0.0.1"]

schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors_and_responses_match_schema(case: schemathesis.Case) -> None:
    response = case.call(headers={"Authorization": f"Bearer {_KEY}"})
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
