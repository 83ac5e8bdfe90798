"""Report drafts, CyberTipline-style XML and generic JSON reports, submission and packages.

A report starts as a draft queued for a case (by a rule, or by hand), is built once a reviewer
has confirmed items of the case, and is then submitted (CyberTipline) or packaged (any hotline,
the police). Every step is audit-logged under ``report:<id>``.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from amparo.clock import Clock, utc_now
from amparo.config import LOCAL_ACTOR
from amparo.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    StorageError,
    SubmissionError,
)
from amparo.reports.cybertip import CyberTipClient, CyberTipTarget
from amparo.reports.cybertip_xml import file_details_xml, report_xml
from amparo.reports.model import ReportData, Reporter, build_report
from amparo.reports.package import PackageResult, write_package
from amparo.store.audit import AuditChain, ChainEntry
from amparo.store.reports import REPORT_STATUSES, ReportRecord, ReportStore, SubmissionRecord

if TYPE_CHECKING:
    from amparo.config import Settings
    from amparo.review.cases import CaseView
    from amparo.store import Store

DESTINATION = "cybertip"


# -- what reports need of the other services (the seams tests fill with small fakes) ---------


class CaseReader(Protocol):
    """Reads a case with its items and decisions (:class:`amparo.review.CaseService`)."""

    def get(self, case_id: int) -> CaseView: ...


class HeldItem(Protocol):
    """An evidence item as reports see it: whether its content is still held."""

    @property
    def held(self) -> bool: ...


class EvidenceReader(Protocol):
    """Reads preserved files (:class:`amparo.evidence.EvidenceStore`); every read is
    audit-logged there."""

    def get(self, item_id: int) -> HeldItem: ...

    def read(self, item_id: int, *, actor: str) -> bytes: ...


class ReportService:
    """Report drafts, building, submission (resumable, under a lease) and packages.

    ``clock`` decides the submission lease and the times recorded (a test moves it past a
    dead submitter's lease instead of waiting)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        cases: CaseReader,
        evidence: EvidenceReader,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self._state = store
        self.cases = cases
        self.evidence = evidence
        self.clock = clock

    @cached_property
    def store(self) -> ReportStore:
        return ReportStore(self._state.db)

    # -- drafts and building ----------------------------------------------------------------

    def queue_draft(
        self, case_id: int, *, rule: str | None = None, actor: str = LOCAL_ACTOR
    ) -> int:
        """Queue a report draft for a case; it is built once the case is confirmed. A case has
        one open draft at a time: queuing again returns it."""
        return self.store.queue(int(case_id), rule=rule, actor=actor)

    def build(self, report_id: int, *, actor: str) -> ReportRecord:
        """Build (or rebuild, until submitted) a draft from its case's confirmed items."""
        record = self.store.get(report_id)
        case = self.cases.get(record.case_id)
        data = build_report(
            case, Reporter.from_settings(self.settings), actor=actor, report_id=record.id
        )
        return self.store.save_built(report_id, data.to_json(), actor=actor)

    def build_case(self, case_id: int, *, actor: str) -> ReportRecord:
        """Queue (or reuse) the case's draft and build it. Everything that can refuse the
        build (reporter settings missing, the case unknown or without confirmed items) is
        checked before the draft is queued, so a refusal writes nothing: no queued row, no
        audit entry (issue #12, point 15)."""
        reporter = Reporter.from_settings(self.settings)
        build_report(self.cases.get(case_id), reporter, actor=actor)
        return self.build(self.queue_draft(case_id, actor=actor), actor=actor)

    def get(self, report_id: int) -> ReportRecord:
        return self.store.get(report_id)

    def list(
        self, *, status: str | None = None, case_id: int | None = None, limit: int = 100
    ) -> list[ReportRecord]:
        if status is not None and status not in REPORT_STATUSES:
            raise InputError(
                f"unknown report status {status!r}", hint="one of " + ", ".join(REPORT_STATUSES)
            )
        return self.store.list(status=status, case_id=case_id, limit=limit)

    def data(self, report_id: int) -> ReportData:
        """The built report's content; refuses a draft that was not built."""
        record = self.store.get(report_id)
        if record.content is None:
            raise ConflictError(
                f"report {report_id} is a draft that was not built yet",
                hint=f"build it first: amparo reports build {report_id}",
            )
        return ReportData.from_json(record.content)

    def xml(self, report_id: int) -> str:
        """The whole report as CyberTipline XML (with one ``fileDetails`` per file)."""
        return report_xml(self.data(report_id))

    def submission(self, report_id: int) -> SubmissionRecord | None:
        return self.store.submission(report_id)

    # -- submitting -------------------------------------------------------------------------

    def submit(
        self, report_id: int, *, actor: str, client: CyberTipClient | None = None
    ) -> SubmissionRecord:
        """Submit to the CyberTipline, or resume a submission that stopped half way.

        Each step is recorded the moment it succeeds (report id, each upload, each file's
        details, finish), so running this again continues where it stopped and never files a
        second report for the same draft. Files are read from the evidence store (each read
        is audit-logged there) and checked against their SHA-256 before upload."""
        record = self.store.get(report_id)
        if record.status == "retracted":
            raise ConflictError(f"report {report_id} was retracted")
        data = self.data(report_id)
        target = CyberTipTarget.from_settings(self.settings)
        sub = self.store.start_submission(
            report_id,
            destination=DESTINATION,
            environment=target.environment,
            base_url=target.base_url,
            actor=actor,
        )
        if sub.status == "finished":
            return sub
        if sub.status == "retracted":
            raise ConflictError(f"the submission of report {report_id} was retracted")
        if sub.base_url != target.base_url:
            raise ConflictError(
                f"report {report_id} was begun at {sub.base_url}, not {target.base_url}",
                hint="resume it with the same cybertip_url it was started with",
            )
        # Two submitters of one draft at once would both call /submit (two reports filed):
        # the submission row is claimed under a lease first, as the webhook outbox does.
        lease = self._lease_seconds()
        token = self.store.claim_submission(report_id, lease_seconds=lease, now=self.clock())
        if token is None:
            current = self.store.submission(report_id)
            if current is not None and current.status == "finished":
                return current
            raise ConflictError(
                f"report {report_id} is being submitted by another process",
                hint=f"wait for it to finish; a submitter that died lets go after {lease:.0f} s",
            )
        sub = self.store.submission(report_id) or sub  # read again under the claim
        own = client is None
        client = client or CyberTipClient(target)
        try:
            return self._run(report_id, data, sub, client, actor, token)
        except SubmissionError as exc:
            self.store.update_submission(report_id, actor=actor, last_error=str(exc))
            raise
        finally:
            self.store.release_claim(report_id, token)
            if own:
                client.close()

    def _lease_seconds(self) -> float:
        """Long enough for any one step (each is one HTTP call bounded by the timeout); the
        lease is renewed before each step."""
        return 2 * float(self.settings.cybertip_timeout_seconds) + 30.0

    def _step(self, report_id: int, token: str) -> None:
        if not self.store.renew_claim(report_id, token, lease_seconds=self._lease_seconds()):
            raise ConflictError(
                f"report {report_id}: this submitter's lease ran out and another took over",
                hint="check the submission with: amparo reports show " + str(report_id),
            )

    def _run(
        self,
        report_id: int,
        data: ReportData,
        sub: SubmissionRecord,
        client: CyberTipClient,
        actor: str,
        token: str,
    ) -> SubmissionRecord:
        if sub.remote_id is None:
            self._step(report_id, token)
            remote = client.submit(report_xml(data, with_files=False))
            sub = self.store.update_submission(
                report_id,
                actor=actor,
                action="report.submit",
                details={"remote_id": remote},
                remote_id=remote,
                status="open",
                last_error=None,
            )
        remote_id = sub.remote_id
        assert remote_id is not None
        for f in data.files:
            key = str(f.item_id)
            state = sub.files.get(key, {})
            if state.get("fileinfo") or state.get("skipped"):
                continue
            file_id = state.get("file_id")
            if file_id is None:
                held = self._held(f.evidence_id)
                if held is None:
                    sub = self.store.update_submission(
                        report_id,
                        actor=actor,
                        action="report.upload.skip",
                        details={"item_id": f.item_id, "sha256": f.sha256},
                        file=(key, {"skipped": "no preserved copy"}),
                    )
                    continue
                content = self._read(held, f.sha256, actor)
                self._step(report_id, token)
                file_id = client.upload(remote_id, f.file_name, content)
                sub = self.store.update_submission(
                    report_id,
                    actor=actor,
                    action="report.upload",
                    details={"item_id": f.item_id, "sha256": f.sha256, "file_id": file_id},
                    file=(key, {"file_id": file_id}),
                )
            self._step(report_id, token)
            client.fileinfo(file_details_xml(f, report_id=remote_id, file_id=str(file_id)))
            sub = self.store.update_submission(
                report_id,
                actor=actor,
                action="report.fileinfo",
                details={"item_id": f.item_id, "file_id": file_id},
                file=(key, {"fileinfo": True}),
            )
        self._step(report_id, token)
        client.finish(remote_id)
        return self.store.update_submission(
            report_id,
            actor=actor,
            action="report.finish",
            details={"remote_id": remote_id},
            status="finished",
            finished_at=self.clock(),
            last_error=None,
            report_status="submitted",
        )

    def _held(self, evidence_id: int | None) -> int | None:
        """``evidence_id`` if the evidence store still holds that copy (not purged or
        discarded since the report was built), else None: a copy that is gone is skipped,
        not retried forever."""
        if evidence_id is None:
            return None
        try:
            return evidence_id if self.evidence.get(evidence_id).held else None
        except NotFoundError:
            return None

    def _read(self, evidence_id: int, sha256: str, actor: str) -> bytes:
        content = self.evidence.read(evidence_id, actor=actor)
        if hashlib.sha256(content).hexdigest() != sha256:
            raise StorageError(
                f"evidence item {evidence_id} does not match the reported SHA-256",
                hint="the evidence store is damaged; nothing was uploaded for this file",
            )
        return content

    def retract(
        self, report_id: int, *, actor: str, client: CyberTipClient | None = None
    ) -> SubmissionRecord:
        """Withdraw a submission that was not finished."""
        sub = self.store.submission(report_id)
        if sub is None or sub.remote_id is None:
            raise ConflictError(
                f"report {report_id} was not submitted", hint="there is nothing to retract"
            )
        if sub.status == "retracted":
            return sub
        if sub.status == "finished":
            raise ConflictError(
                f"report {report_id} was finished and is with the hotline",
                hint="a finished report cannot be retracted through the API; contact NCMEC",
            )
        target = CyberTipTarget.from_settings(self.settings)
        own = client is None
        client = client or CyberTipClient(target)
        try:
            client.retract(sub.remote_id)
        finally:
            if own:
                client.close()
        return self.store.update_submission(
            report_id,
            actor=actor,
            action="report.retract",
            details={"remote_id": sub.remote_id},
            status="retracted",
            retracted_at=self.clock(),
            report_status="retracted",
        )

    # -- packages ---------------------------------------------------------------------------

    def package(
        self, report_id: int, out: Path, *, actor: str, plain: bool = False
    ) -> PackageResult:
        """Write the report package (see :mod:`amparo.reports.package`)."""
        if out.exists() and out.is_dir():
            raise InputError(f"{out} is a folder", hint="give the zip file's path")
        data = self.data(report_id)
        by_item = {f.item_id: f for f in data.files}

        def read_file(item_id: int) -> bytes:
            evidence_id = self._held(by_item[item_id].evidence_id)
            if evidence_id is None:
                raise LookupError(item_id)
            return self.evidence.read(evidence_id, actor=actor)

        targets = {f"case:{data.case_id}", f"report:{report_id}"}
        targets.update(f"evidence:{f.evidence_id}" for f in data.files if f.evidence_id)
        self._state.audit_log.append(
            "report.package",
            f"report:{report_id}",
            {"case_id": data.case_id, "plain": plain, "path": str(out)},
            actor=actor,
        )

        def custody() -> list[ChainEntry]:
            return list(AuditChain(self._state.db).entries(targets=targets))

        return write_package(out, data, read_file=read_file, custody=custody, plain=plain)
