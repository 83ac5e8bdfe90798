"""Persistence of reports and their submissions (the reports work's repository).

Every change is recorded in the audit log in the same transaction, with target
``report:<id>`` and the case id in its details.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, insert, or_, select, update

from amparo.clock import as_utc
from amparo.errors import ConflictError, NotFoundError
from amparo.store import audit as audit_chain
from amparo.store.models_reports import ReportRow, ReportSubmissionRow
from amparo.store.uow import Database

_report = cast(Table, ReportRow.__table__)
_submission = cast(Table, ReportSubmissionRow.__table__)

REPORT_STATUSES = ("queued", "built", "submitted", "retracted")


@dataclass(frozen=True)
class ReportRecord:
    id: int
    case_id: int
    rule: str | None
    status: str
    """``queued`` (a draft), ``built``, ``submitted`` or ``retracted``."""
    created_at: datetime
    created_by: str
    built_at: datetime | None
    built_by: str | None
    content: dict[str, Any] | None
    """The generic JSON form once built."""

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "case_id": self.case_id,
            "rule": self.rule,
            "status": self.status,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "built_at": self.built_at,
            "built_by": self.built_by,
            "files": len(self.content["files"]) if self.content else 0,
        }


@dataclass(frozen=True)
class SubmissionRecord:
    report_id: int
    destination: str
    environment: str
    base_url: str
    remote_id: str | None
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    """item id (text) -> {"file_id": ..., "fileinfo": true} or {"skipped": reason}."""
    status: str = "started"
    """``started``, ``open`` (filed, files pending), ``finished`` or ``retracted``."""
    last_error: str | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    retracted_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def _report_record(row: Any) -> ReportRecord:
    return ReportRecord(
        id=int(row.id),
        case_id=int(row.case_id),
        rule=row.rule,
        status=row.status,
        created_at=as_utc(row.created_at),
        created_by=row.created_by,
        built_at=as_utc(row.built_at),
        built_by=row.built_by,
        content=json.loads(row.content) if row.content else None,
    )


def _submission_record(row: Any) -> SubmissionRecord:
    return SubmissionRecord(
        report_id=int(row.report_id),
        destination=row.destination,
        environment=row.environment,
        base_url=row.base_url,
        remote_id=row.remote_id,
        files=json.loads(row.files or "{}"),
        status=row.status,
        last_error=row.last_error,
        started_at=as_utc(row.started_at),
        updated_at=as_utc(row.updated_at),
        finished_at=as_utc(row.finished_at),
        retracted_at=as_utc(row.retracted_at),
    )


class ReportStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- reports --------------------------------------------------------------------------

    def queue(self, case_id: int, *, rule: str | None, actor: str) -> int:
        """A draft for the case: the open one (queued or built, not yet submitted) if there
        is one, else a new one (serialised by the audit lock: finds acted on in parallel
        make one draft)."""
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            audit_chain.hold(conn)
            existing = conn.execute(
                select(_report.c.id)
                .where(_report.c.case_id == case_id, _report.c.status.in_(["queued", "built"]))
                .order_by(_report.c.id)
                .limit(1)
            ).scalar()
            if existing is not None:
                return int(existing)
            report_id = int(
                conn.execute(
                    insert(_report)
                    .values(
                        case_id=case_id,
                        rule=rule,
                        status="queued",
                        created_at=datetime.now(UTC),
                        created_by=actor,
                    )
                    .returning(_report.c.id)
                ).scalar_one()
            )
            _log(conn, actor, "report.queue", report_id, case_id, {"rule": rule})
        return report_id

    def get(self, report_id: int) -> ReportRecord:
        with self._db.reading() as conn:
            row = conn.execute(select(_report).where(_report.c.id == report_id)).first()
        if row is None:
            raise NotFoundError(
                f"no report {report_id}", hint="see `amparo reports list` for the reports there are"
            )
        return _report_record(row)

    def list(
        self, *, status: str | None = None, case_id: int | None = None, limit: int = 100
    ) -> list[ReportRecord]:
        query = select(_report).order_by(_report.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(_report.c.status == status)
        if case_id is not None:
            query = query.where(_report.c.case_id == case_id)
        with self._db.reading() as conn:
            return [_report_record(r) for r in conn.execute(query)]

    def save_built(self, report_id: int, content: dict[str, Any], *, actor: str) -> ReportRecord:
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            row = conn.execute(
                select(_report.c.status, _report.c.case_id).where(_report.c.id == report_id)
            ).first()
            if row is None:
                raise NotFoundError(f"no report {report_id}")
            if row.status not in ("queued", "built"):
                raise ConflictError(
                    f"report {report_id} is {row.status} and cannot be rebuilt",
                    hint="queue a new report for the case instead",
                )
            conn.execute(
                update(_report)
                .where(_report.c.id == report_id)
                .values(
                    status="built",
                    built_at=datetime.now(UTC),
                    built_by=actor,
                    content=json.dumps(content, sort_keys=True),
                )
            )
            _log(
                conn,
                actor,
                "report.build",
                report_id,
                int(row.case_id),
                {"files": [f["sha256"] for f in content.get("files", [])]},
            )
        return self.get(report_id)

    # -- submissions ----------------------------------------------------------------------

    def submission(self, report_id: int) -> SubmissionRecord | None:
        with self._db.reading() as conn:
            row = conn.execute(
                select(_submission).where(_submission.c.report_id == report_id)
            ).first()
        return None if row is None else _submission_record(row)

    def start_submission(
        self, report_id: int, *, destination: str, environment: str, base_url: str, actor: str
    ) -> SubmissionRecord:
        """The report's submission record, created on the first attempt (the check and the
        insert are one transaction under the audit lock, so two first attempts at once find
        one record instead of one of them failing on the unique report id)."""
        existing = self.submission(report_id)
        if existing is not None:
            return existing
        now = datetime.now(UTC)
        report = self.get(report_id)
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            audit_chain.hold(conn)
            row = conn.execute(
                select(_submission).where(_submission.c.report_id == report_id)
            ).first()
            if row is not None:
                return _submission_record(row)
            conn.execute(
                insert(_submission).values(
                    report_id=report_id,
                    destination=destination,
                    environment=environment,
                    base_url=base_url,
                    files="{}",
                    status="started",
                    started_at=now,
                    updated_at=now,
                )
            )
            _log(
                conn,
                actor,
                "report.submit.start",
                report_id,
                report.case_id,
                {"destination": destination, "environment": environment, "url": base_url},
            )
        result = self.submission(report_id)
        assert result is not None
        return result

    def claim_submission(
        self, report_id: int, *, lease_seconds: float, now: datetime
    ) -> str | None:
        """Take the submission under a lease; returns the claim token, or None when another
        submitter holds an unexpired lease (or the submission is over). One conditional
        UPDATE, so of two racing submitters exactly one wins, on SQLite and PostgreSQL."""
        token = secrets.token_hex(16)
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            done = conn.execute(
                update(_submission)
                .where(
                    and_(
                        _submission.c.report_id == report_id,
                        _submission.c.status.in_(("started", "open")),
                        or_(
                            _submission.c.claimed_until.is_(None),
                            _submission.c.claimed_until < now,
                        ),
                    )
                )
                .values(claim_token=token, claimed_until=now + timedelta(seconds=lease_seconds))
            )
        return token if done.rowcount == 1 else None

    def renew_claim(self, report_id: int, token: str, *, lease_seconds: float) -> bool:
        """Extend the lease before a step; False when it was lost (ran out and was taken)."""
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            done = conn.execute(
                update(_submission)
                .where(
                    and_(_submission.c.report_id == report_id, _submission.c.claim_token == token)
                )
                .values(claimed_until=datetime.now(UTC) + timedelta(seconds=lease_seconds))
            )
        return done.rowcount == 1

    def release_claim(self, report_id: int, token: str) -> None:
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            conn.execute(
                update(_submission)
                .where(
                    and_(_submission.c.report_id == report_id, _submission.c.claim_token == token)
                )
                .values(claim_token=None, claimed_until=None)
            )

    def update_submission(
        self,
        report_id: int,
        *,
        actor: str,
        action: str | None = None,
        details: dict[str, Any] | None = None,
        file: tuple[str, dict[str, Any]] | None = None,
        report_status: str | None = None,
        **values: Any,
    ) -> SubmissionRecord:
        """Record one step's outcome (and audit it as ``action`` when given)."""
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            row = conn.execute(
                select(_submission).where(_submission.c.report_id == report_id)
            ).first()
            if row is None:
                raise NotFoundError(f"report {report_id} has no submission")
            if file is not None:
                files = json.loads(row.files or "{}")
                files.setdefault(file[0], {}).update(file[1])
                values["files"] = json.dumps(files, sort_keys=True)
            values["updated_at"] = datetime.now(UTC)
            conn.execute(
                update(_submission).where(_submission.c.report_id == report_id).values(**values)
            )
            if report_status is not None:
                conn.execute(
                    update(_report).where(_report.c.id == report_id).values(status=report_status)
                )
            if action is not None:
                case_id = conn.execute(
                    select(_report.c.case_id).where(_report.c.id == report_id)
                ).scalar_one()
                _log(conn, actor, action, report_id, int(case_id), details or {})
        result = self.submission(report_id)
        assert result is not None
        return result


def _log(
    conn: Connection,
    actor: str,
    action: str,
    report_id: int,
    case_id: int,
    details: dict[str, Any],
) -> None:
    audit_chain.append(conn, actor, action, f"report:{report_id}", {"case_id": case_id, **details})
