"""The reports and audit routes of the v1 API: scopes, build, XML/JSON, submit, verify, export."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_api_support import QUIET, make_keys

from amparo.api import create_app
from amparo.app import Amparo
from amparo.config import Settings
from amparo.matching import Match
from amparo.reports.service import ReportService
from amparo.reports.standin import StandIn, running
from amparo.review.cases import CaseItem, CaseView, Decision
from amparo.store import audit as chain

pytestmark = QUIET
T0 = datetime(2026, 3, 1, tzinfo=UTC)
DATA = b"synthetic benign file"


class _Cases:
    """Every case: one confirmed item (``reports.service.CaseReader``)."""

    def get(self, case_id: int) -> CaseView:
        item = CaseItem(
            1, case_id, hashlib.sha256(DATA).hexdigest(), hashlib.md5(DATA).hexdigest(),
            len(DATA), "photo", "f.jpg", {"account_id": "acct-1"},
            (Match("known", 1, "md5", 0, "csam"),), 5, T0, T0, 1, True,
            Decision("confirm", "rev", T0, "A1"),
        )  # fmt: skip
        return CaseView(case_id, "account:acct-1", "decided", 1, T0, T0, (item,))


@dataclass(frozen=True)
class _Held:
    id: int
    held: bool = True


class _Evidence:
    """Every item held, its content DATA (``reports.service.EvidenceReader``)."""

    def get(self, item_id: int) -> _Held:
        return _Held(item_id)

    def read(self, item_id: int, *, actor: str) -> bytes:
        return DATA


@pytest.fixture
def client(sqlite_settings: Settings, tmp_path: Path) -> Iterator[tuple[TestClient, dict, StandIn]]:
    standin = StandIn()
    with running(standin) as url:
        settings = replace(
            sqlite_settings,
            reporter_org_name="Org",
            reporter_email="t@example.org",
            cybertip_url=url,
        )
        keys = make_keys(settings)
        amparo = Amparo(settings)
        amparo.wire(reports=ReportService(settings, amparo.store, _Cases(), _Evidence()))
        with TestClient(create_app(settings, amparo=amparo)) as tc:
            yield tc, {k: {"Authorization": f"Bearer {v}"} for k, v in keys.items()}, standin
        amparo.close()


def test_build_read_submit_and_scopes(client) -> None:
    tc, keys, standin = client
    amparo: Amparo = tc.app.state.service.amparo
    draft = amparo.reports.queue_draft(3, rule="r", actor="rules")
    assert tc.post(f"/v1/reports/{draft}/build", headers=keys["matcher"]).status_code == 403
    built = tc.post(f"/v1/reports/{draft}/build", headers=keys["reviewer"])
    assert built.status_code == 200 and built.json()["status"] == "built"
    listing = tc.get("/v1/reports", headers=keys["auditor"]).json()
    assert [r["id"] for r in listing] == [draft]
    xml = tc.get(f"/v1/reports/{draft}", params={"format": "xml"}, headers=keys["reviewer"])
    assert xml.headers["content-type"].startswith("application/xml")
    assert "<industryClassification>A1</industryClassification>" in xml.text
    doc = tc.get(f"/v1/reports/{draft}", headers=keys["reviewer"]).json()
    assert doc["report"]["files"][0]["viewed_by_esp"] is True
    assert tc.post(f"/v1/reports/{draft}/submit", headers=keys["reviewer"]).status_code == 403
    sub = tc.post(f"/v1/reports/{draft}/submit", headers=keys["admin"])
    assert sub.status_code == 200 and sub.json()["status"] == "finished"
    assert len(standin.reports) == 1
    assert tc.get("/v1/reports/999", headers=keys["reviewer"]).status_code == 404


def test_audit_verify_and_export(client) -> None:
    tc, keys, _ = client
    assert tc.get("/v1/audit/verify", headers=keys["reviewer"]).status_code == 403
    verdict = tc.get("/v1/audit/verify", headers=keys["auditor"]).json()
    assert verdict["ok"] and verdict["entries"] >= 6  # the six keys' creation
    export = tc.get("/v1/audit/export", headers=keys["auditor"])
    assert export.status_code == 200
    assert chain.verify_export(export.text.splitlines()).ok
