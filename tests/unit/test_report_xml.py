"""Reports built from confirmed cases: the CyberTipline XML and the generic JSON form."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from amparo.config import load_settings
from amparo.errors import ConfigError, ConflictError
from amparo.matching import Match
from amparo.reports.cybertip_xml import INCIDENT_TYPE, file_details_xml, report_xml
from amparo.reports.model import ReportData, Reporter, build_report
from amparo.review.cases import CaseItem, CaseView, Decision

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REPORTER = Reporter("Example Platform Ltd", "Ana Maria Silva", "trust@example.org", "+1 555 0100")


def item(n: int, *, decision: Decision | None, viewed: bool = False, **source: str) -> CaseItem:
    data = f"benign synthetic content {n}".encode()
    return CaseItem(
        id=n,
        case_id=7,
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
        size=len(data),
        media_kind="photo",
        file_name=source.pop("file_name", f"img{n}.jpg"),
        source={"kind": "api", "account_id": "acct-42", **source},
        matches=(Match("known", 10 + n, "pdq", 3, "csam"),),
        evidence_id=100 + n,
        first_seen=T0 + timedelta(minutes=n),
        last_seen=T0 + timedelta(minutes=n + 5),
        sightings=1,
        viewed=viewed,
        decision=decision,
    )


def confirm(classification: str, *annotations: str) -> Decision:
    return Decision("confirm", "rev1", T0 + timedelta(hours=1), classification, annotations)


def case(*items: CaseItem) -> CaseView:
    return CaseView(7, "account:acct-42", "decided", 5, T0, T0, tuple(items))


def test_xml_is_well_formed_and_carries_the_review() -> None:
    view = case(
        item(1, decision=confirm("A1", "physicalHarm"), viewed=True, url="https://ex.org/p/1"),
        item(2, decision=confirm("B2"), viewed=False, upload_id="up-9"),
        item(3, decision=Decision("false_positive", "rev1", T0)),
        item(4, decision=None),
    )
    data = build_report(view, REPORTER, actor="rev2", report_id=3)
    root = ET.fromstring(report_xml(data))
    assert root.tag == "report"
    assert [c.tag for c in root][:4] == [
        "incidentSummary",
        "internetDetails",
        "reporter",
        "personOrUserReported",
    ]
    assert root.findtext("incidentSummary/incidentType") == INCIDENT_TYPE
    assert root.findtext("incidentSummary/incidentDateTime") == "2026-03-01T12:01:00+00:00"
    assert root.findtext("internetDetails/webPageIncident/url") == "https://ex.org/p/1"
    assert "up-9" in (root.findtext("internetDetails/webPageIncident/additionalInfo") or "")
    assert root.findtext("reporter/reportingPerson/firstName") == "Ana Maria"
    assert root.findtext("reporter/reportingPerson/lastName") == "Silva"
    assert root.findtext("reporter/reportingPerson/email") == "trust@example.org"
    # Nothing about the person but the platform's own account id.
    reported = root.find("personOrUserReported")
    assert reported is not None and [c.tag for c in reported] == ["espIdentifier"]
    assert reported.findtext("espIdentifier") == "acct-42"
    files = root.findall("fileDetails")
    assert len(files) == 2  # only the confirmed items
    first, second = files
    assert first.findtext("fileViewedByEsp") == "true"
    assert second.findtext("fileViewedByEsp") == "false"
    assert first.findtext("industryClassification") == "A1"
    assert second.findtext("industryClassification") == "B2"
    hashes = {h.get("hashType"): h.text for h in first.findall("originalFileHash")}
    assert hashes == {"MD5": view.items[0].md5, "SHA256": view.items[0].sha256}
    assert first.findtext("originalFileName") == "img1.jpg"
    assert first.find("fileAnnotations/physicalHarm") is not None
    # The submission form leaves the files for /fileinfo.
    assert ET.fromstring(report_xml(data, with_files=False)).find("fileDetails") is None


def test_hostile_names_are_escaped_and_invalid_characters_dropped() -> None:
    nasty = "<x>&\"'\x00\x07name]]>.jpg"
    view = case(
        item(
            1,
            decision=confirm("A2", "bad name", "<script>"),
            file_name=nasty,
            url="http://a/?a=1&b=<2>",
        )
    )
    data = build_report(view, replace(REPORTER, org_name="A & B <Ltd>"), actor="r")
    root = ET.fromstring(report_xml(data))
    assert root.findtext("fileDetails/originalFileName") == "<x>&\"'name]]>.jpg"
    assert root.findtext("internetDetails/webPageIncident/url") == "http://a/?a=1&b=<2>"
    assert root.find("fileDetails/fileAnnotations") is None  # not element names: JSON only
    details = ET.fromstring(file_details_xml(data.files[0], report_id="55", file_id="f1"))
    assert (details.findtext("reportId"), details.findtext("fileId")) == ("55", "f1")


def test_generic_json_round_trips_and_holds_no_media() -> None:
    view = case(item(1, decision=confirm("A1"), viewed=True), item(2, decision=confirm("B1")))
    data = build_report(view, REPORTER, actor="rev2", report_id=9)
    doc = data.to_json()
    assert doc["schema"] == "amparo-report" and doc["version"] == 1
    text = json.dumps(doc)
    assert ReportData.from_json(json.loads(text)) == data
    assert doc["files"][0]["classification"] == "A1" and doc["files"][0]["viewed_by_esp"]
    assert doc["files"][0]["matches"][0] == {
        "bank": "known",
        "entry_id": 11,
        "signal_type": "pdq",
        "distance": 3,
        "category": "csam",
    }
    assert "benign synthetic content" not in text


def test_a_case_without_confirmed_items_is_refused() -> None:
    view = case(item(1, decision=None), item(2, decision=Decision("escalate", "rev1", T0)))
    with pytest.raises(ConflictError, match="no confirmed items"):
        build_report(view, REPORTER, actor="r")


def test_reporter_settings_are_required(tmp_path) -> None:
    with pytest.raises(ConfigError, match="reporter_org_name"):
        Reporter.from_settings(load_settings(env={}, overrides={"home": tmp_path}))
    settings = load_settings(
        env={"AMPARO_REPORTER_ORG_NAME": "Org", "AMPARO_REPORTER_EMAIL": "a@b.c"},
        overrides={"home": tmp_path},
    )
    assert Reporter.from_settings(settings).org_name == "Org"
