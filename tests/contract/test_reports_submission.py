"""Reports end to end on SQLite and PostgreSQL: a draft is built from a confirmed case,
submitted through the whole CyberTipline workflow to the local stand-in, resumed after a
failure half way without a second report, retracted, and packaged."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from amparo.app import Amparo
from amparo.config import Settings
from amparo.errors import ConfigError, ConflictError, SubmissionError
from amparo.matching import Match
from amparo.reports.cybertip import TEST_URL, CyberTipClient, CyberTipTarget
from amparo.reports.package import decrypt_member
from amparo.reports.service import ReportService
from amparo.reports.standin import StandIn, running
from amparo.review.cases import CaseItem, CaseView, Decision
from amparo.store import Store
from amparo.store import audit as chain
from clocks import ManualClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FILES = {101: b"synthetic benign bytes one", 102: b"synthetic benign bytes two"}


class FakeCases:
    """The cases reports read (``reports.service.CaseReader``): case 7, confirmed."""

    def __init__(self) -> None:
        self.views: dict[int, CaseView] = {7: _confirmed_case()}

    def get(self, case_id: int) -> CaseView:
        return self.views[case_id]


@dataclass(frozen=True)
class Held:
    id: int
    held: bool


class FakeEvidence:
    """The evidence reports read (``reports.service.EvidenceReader``): FILES, each read
    audit-logged as the real store does."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.reads: list[int] = []
        self.gone: set[int] = set()  # purged or discarded since the report was built

    def get(self, item_id: int) -> Held:
        return Held(id=item_id, held=item_id not in self.gone)

    def read(self, item_id: int, *, actor: str) -> bytes:
        self.reads.append(item_id)
        self.store.audit_log.append("evidence.read", f"evidence:{item_id}", actor=actor)
        return FILES[item_id]


def _item(n: int, evidence_id: int, decision: Decision | None) -> CaseItem:
    data = FILES[evidence_id]
    return CaseItem(
        id=n,
        case_id=7,
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
        size=len(data),
        media_kind="photo",
        file_name=f"upload-{n}.jpg",
        source={"kind": "api", "account_id": "acct-42", "upload_id": f"u{n}"},
        matches=(Match("known", n, "pdq", 2, "csam"),),
        evidence_id=evidence_id,
        first_seen=T0,
        last_seen=T0,
        sightings=1,
        viewed=n == 1,
        decision=decision,
    )


def _confirmed_case() -> CaseView:
    confirm = Decision("confirm", "rev1", T0 + timedelta(hours=1), "A2", ("infant",))
    return CaseView(
        7,
        "account:acct-42",
        "decided",
        5,
        T0,
        T0,
        (_item(1, 101, confirm), _item(2, 102, replace(confirm, classification="B1"))),
    )


@pytest.fixture
def standin() -> Iterator[tuple[StandIn, str]]:
    service = StandIn(username="esp", password="secret")
    with running(service) as url:
        yield service, url


@pytest.fixture
def app(settings: Settings, standin: tuple[StandIn, str]) -> Iterator[Amparo]:
    configured = replace(
        settings,
        reporter_org_name="Example Platform",
        reporter_contact_name="Ana Silva",
        reporter_email="trust@example.org",
        cybertip_url=standin[1],
        cybertip_username="esp",
        cybertip_password="secret",
        cybertip_timeout_seconds=10.0,
    )
    with Amparo(configured) as app:
        yield app


@pytest.fixture
def cases() -> FakeCases:
    return FakeCases()


@pytest.fixture
def evidence(app: Amparo) -> FakeEvidence:
    return FakeEvidence(app.store)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def amparo(app: Amparo, cases: FakeCases, evidence: FakeEvidence, clock: ManualClock) -> Amparo:
    """The installation with reports over the fake cases and evidence, on a manual clock."""
    app.wire(reports=ReportService(app.settings, app.store, cases, evidence, clock=clock))
    return app


def _built(amparo: Amparo) -> int:
    draft = amparo.reports.queue_draft(7, rule="report-csam", actor="rules")
    assert amparo.reports.queue_draft(7, actor="rules") == draft  # one open draft per case
    record = amparo.reports.build(draft, actor="rev2")
    assert record.status == "built" and record.content is not None
    return draft


def test_whole_workflow_against_the_standin(amparo: Amparo, standin: tuple[StandIn, str]) -> None:
    service, url = standin
    draft = _built(amparo)
    sub = amparo.reports.submit(draft, actor="admin1")
    assert sub.status == "finished" and sub.environment == "test" and sub.base_url == url
    assert amparo.reports.get(draft).status == "submitted"
    [report] = service.reports.values()
    assert report.finished and report.id == sub.remote_id
    uploaded = sorted(f["sha256"] for f in report.files.values())
    assert uploaded == sorted(hashlib.sha256(b).hexdigest() for b in FILES.values())
    assert all(
        f["details"] and "industryClassification" in f["details"] for f in report.files.values()
    )
    # Submitting again changes nothing and files nothing new.
    assert amparo.reports.submit(draft, actor="admin1").status == "finished"
    assert len(service.reports) == 1 and service.calls["submit"] == 1
    actions = [e.action for e in amparo.store.audit_log.entries(50, f"report:{draft}")]
    assert actions[:5] == [
        "report.finish",
        "report.fileinfo",
        "report.upload",
        "report.fileinfo",
        "report.upload",
    ]
    assert chain.verify_store(amparo.store.engine, None).ok


def test_a_copy_purged_after_the_build_is_skipped_not_retried(
    amparo: Amparo, evidence: FakeEvidence, standin: tuple[StandIn, str]
) -> None:
    service, _ = standin
    draft = _built(amparo)
    evidence.gone.add(102)
    sub = amparo.reports.submit(draft, actor="admin1")
    assert sub.status == "finished"
    assert sub.files["2"] == {"skipped": "no preserved copy"}
    [report] = service.reports.values()
    assert [f["sha256"] for f in report.files.values()] == [hashlib.sha256(FILES[101]).hexdigest()]
    assert evidence.reads == [101]


@pytest.mark.parametrize("step", ["upload", "fileinfo", "finish"])
def test_failure_half_way_resumes_without_a_second_report(
    amparo: Amparo, standin: tuple[StandIn, str], step: str
) -> None:
    service, _ = standin
    service.fail = {step: 2 if step != "finish" else 1}
    draft = _built(amparo)
    with pytest.raises(SubmissionError, match=step):
        amparo.reports.submit(draft, actor="admin1")
    sub = amparo.reports.submission(draft)
    assert sub is not None and sub.remote_id is not None and sub.status == "open"
    assert sub.last_error and step in sub.last_error
    resumed = amparo.reports.submit(draft, actor="admin1")
    assert resumed.status == "finished" and resumed.remote_id == sub.remote_id
    assert len(service.reports) == 1 and service.calls["submit"] == 1
    assert service.calls["upload"] == 2 + (step == "upload")  # only the failed one again
    [report] = service.reports.values()
    assert report.finished and len(report.files) == 2


def test_retract_an_unfinished_submission(amparo: Amparo, standin: tuple[StandIn, str]) -> None:
    service, _ = standin
    service.fail = {"finish": 1}
    draft = _built(amparo)
    with pytest.raises(SubmissionError):
        amparo.reports.submit(draft, actor="admin1")
    assert amparo.reports.retract(draft, actor="admin1").status == "retracted"
    assert next(iter(service.reports.values())).retracted
    assert amparo.reports.get(draft).status == "retracted"
    with pytest.raises(ConflictError):
        amparo.reports.submit(draft, actor="admin1")


def test_unconfirmed_case_and_unbuilt_draft_are_refused(amparo: Amparo, cases: FakeCases) -> None:
    cases.views[8] = replace(_confirmed_case(), id=8, items=())
    draft = amparo.reports.queue_draft(8, actor="rules")
    with pytest.raises(ConflictError, match="not built"):
        amparo.reports.submit(draft, actor="admin1")
    with pytest.raises(ConflictError, match="no confirmed items"):
        amparo.reports.build(draft, actor="rev2")
    assert amparo.reports.get(draft).status == "queued"


def test_package_holds_report_encrypted_files_manifest_and_custody(
    amparo: Amparo, tmp_path: Path
) -> None:
    draft = _built(amparo)
    out = tmp_path / "out" / "report.zip"
    result = amparo.reports.package(draft, out, actor="rev2")
    assert result.files == 2 and result.key is not None and not result.missing
    key = bytes.fromhex(result.key)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        for name, digest in manifest["members"].items():
            assert hashlib.sha256(zf.read(name)).hexdigest() == digest
        for f in manifest["files"]:
            blob = zf.read(f["member"])
            assert f["member"].endswith(".enc") and blob not in FILES.values()
            assert hashlib.sha256(decrypt_member(key, f["member"], blob)).hexdigest() == f["sha256"]
        custody = [json.loads(line) for line in zf.read("custody.jsonl").splitlines()]
        assert {"report.queue", "report.build", "evidence.read", "report.package"} <= {
            c["action"] for c in custody
        }
        assert all(len(c["hash"]) == 64 for c in custody)
        assert b"<report>" in zf.read("report.xml")
    assert {"report.xml", "report.json", "manifest.json", "custody.jsonl"} <= names
    plain = amparo.reports.package(draft, tmp_path / "plain.zip", actor="rev2", plain=True)
    assert plain.key is None
    with zipfile.ZipFile(plain.path) as zf:
        assert sorted(zf.read(n) for n in zf.namelist() if n.startswith("files/")) == sorted(
            FILES.values()
        )


def test_production_needs_an_explicit_url(settings: Settings) -> None:
    assert CyberTipTarget.from_settings(settings).base_url == TEST_URL
    with pytest.raises(ConfigError, match="cybertip_url"):
        CyberTipTarget.from_settings(replace(settings, cybertip_environment="production"))
    with pytest.raises(ConfigError):
        CyberTipTarget.from_settings(replace(settings, cybertip_environment="prod"))
    explicit = replace(
        settings, cybertip_environment="production", cybertip_url="https://hotline.example/ispws"
    )
    assert CyberTipTarget.from_settings(explicit).environment == "production"


def test_wrong_credentials_are_a_clear_error(
    amparo: Amparo, cases: FakeCases, evidence: FakeEvidence
) -> None:
    draft = _built(amparo)
    # The same installation, configured with the wrong password.
    with Amparo(replace(amparo.settings, cybertip_password="wrong")) as wrong:
        wrong.wire(reports=ReportService(wrong.settings, wrong.store, cases, evidence))
        with pytest.raises(SubmissionError, match="credentials"):
            wrong.reports.submit(draft, actor="admin1")
    sub: Any = amparo.reports.submission(draft)
    assert sub.remote_id is None


def test_build_without_reporter_config_writes_nothing(settings: Settings) -> None:
    """Issue #12 point 15: a refused ``reports build`` left a queued draft and its audit
    entry behind; every check now runs before anything is written."""
    app = Amparo(replace(settings, reporter_org_name="", reporter_email=""))
    try:
        app.wire(
            reports=ReportService(app.settings, app.store, FakeCases(), FakeEvidence(app.store))
        )
        before = len(app.store.audit_log.entries(50))
        with pytest.raises(ConfigError, match="reporter_org_name"):
            app.reports.build_case(7, actor="rev2")
        assert app.reports.list() == []
        assert len(app.store.audit_log.entries(50)) == before
    finally:
        app.close()


def test_racing_submits_of_one_draft_call_submit_once(
    amparo: Amparo, standin: tuple[StandIn, str]
) -> None:
    """Issue #12 point 17: a second ``reports submit`` of the same draft, started while the
    first is about to call /submit, is refused (the row is claimed under a lease) instead of
    filing a second report."""
    service, _ = standin
    draft = _built(amparo)
    target = CyberTipTarget.from_settings(amparo.settings)
    outcomes: list[object] = []

    class Racing(CyberTipClient):
        def submit(self, report_xml: str) -> str:
            if not outcomes:  # the other submitter arrives now, once
                outcomes.append("raced")
                try:
                    outcomes.append(amparo.reports.submit(draft, actor="admin2"))
                except ConflictError as exc:
                    outcomes.append(exc)
            return super().submit(report_xml)

    with Racing(target) as client:
        sub = amparo.reports.submit(draft, actor="admin1", client=client)
    assert sub.status == "finished"
    assert isinstance(outcomes[1], ConflictError) and "another process" in str(outcomes[1])
    assert service.calls["submit"] == 1 and len(service.reports) == 1
    # The claim is let go at the end: a later submit answers from the record.
    assert amparo.reports.submit(draft, actor="admin1").status == "finished"


def test_a_dead_submitters_lease_runs_out(
    amparo: Amparo, clock: ManualClock, standin: tuple[StandIn, str]
) -> None:
    service, _ = standin
    draft = _built(amparo)
    store = amparo.reports.store
    store.start_submission(
        draft, destination="cybertip", environment="test", base_url=standin[1], actor="a"
    )
    assert store.claim_submission(draft, lease_seconds=60, now=clock()) is not None  # then died
    with pytest.raises(ConflictError, match="another process"):
        amparo.reports.submit(draft, actor="admin1")
    assert service.calls["submit"] == 0
    clock.advance(61)  # the dead submitter's lease has run out
    assert amparo.reports.submit(draft, actor="admin1").status == "finished"
    assert service.calls["submit"] == 1
