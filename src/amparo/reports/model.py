"""A report's content, built from a confirmed case: Amparo's generic JSON form.

The generic form (``schema: "amparo-report"``, ``version: 1``; documented in docs/reports.md)
is what Amparo stores and what hotlines other than NCMEC receive; the CyberTipline XML
(:mod:`amparo.reports.cybertip_xml`) is rendered from it. It carries hashes, file names,
classifications and the platform's own ids, never media bytes, and nothing about people beyond
the platform-supplied account id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from amparo.config import Settings
from amparo.errors import ConfigError, ConflictError, InputError
from amparo.review.cases import CaseItem, CaseView

SCHEMA = "amparo-report"
VERSION = 1


@dataclass(frozen=True)
class Reporter:
    org_name: str
    contact_name: str
    email: str
    phone: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Reporter:
        missing = [
            name
            for name in ("reporter_org_name", "reporter_email")
            if not str(getattr(settings, name)).strip()
        ]
        if missing:
            raise ConfigError(
                f"reports need {' and '.join(missing)} set",
                hint="set them in amparo.toml or as AMPARO_REPORTER_ORG_NAME / "
                "AMPARO_REPORTER_EMAIL (see docs/configuration.md)",
            )
        return cls(
            org_name=settings.reporter_org_name.strip(),
            contact_name=settings.reporter_contact_name.strip(),
            email=settings.reporter_email.strip(),
            phone=settings.reporter_phone.strip(),
        )


@dataclass(frozen=True)
class ReportedFile:
    """One confirmed item of the case."""

    item_id: int
    file_name: str
    sha256: str
    md5: str | None
    size: int | None
    media_kind: str | None
    viewed_by_esp: bool
    """A reviewer looked at the media itself (CyberTipline ``fileViewedByEsp``)."""
    classification: str
    """Industry classification A1, A2, B1 or B2, from the reviewer's decision."""
    annotations: tuple[str, ...]
    reviewed_by: str
    reviewed_at: str
    first_seen: str
    last_seen: str
    evidence_id: int | None
    url: str | None = None
    upload_id: str | None = None
    account_id: str | None = None
    matches: tuple[dict[str, Any], ...] = ()
    """bank, entry_id, signal_type, distance, category of each match (no bank hashes)."""


@dataclass(frozen=True)
class ReportData:
    """Everything a report says, in the generic form."""

    case_id: int
    built_at: str
    built_by: str
    reporter: Reporter
    incident_at: str
    """When the earliest confirmed file was first seen (ISO 8601, UTC)."""
    files: tuple[ReportedFile, ...]
    report_id: int | None = None
    accounts: tuple[str, ...] = ()
    """Platform-supplied ids of the accounts that uploaded the files."""
    urls: tuple[str, ...] = ()
    upload_ids: tuple[str, ...] = ()
    incident_type: str = "child_sexual_abuse_material"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = [
            {**asdict(f), "annotations": list(f.annotations), "matches": list(f.matches)}
            for f in self.files
        ]
        for key in ("accounts", "urls", "upload_ids"):
            data[key] = list(data[key])
        return {"schema": SCHEMA, "version": VERSION, **data}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReportData:
        if data.get("schema") != SCHEMA:
            raise InputError("not an Amparo report document", hint=f'expected schema "{SCHEMA}"')
        if int(data.get("version", 0)) > VERSION:
            raise InputError(
                f"report version {data.get('version')} is newer than this Amparo reads",
                hint="upgrade Amparo",
            )
        files = tuple(
            ReportedFile(
                **{
                    **f,
                    "annotations": tuple(f.get("annotations") or ()),
                    "matches": tuple(f.get("matches") or ()),
                }
            )
            for f in data["files"]
        )
        return cls(
            case_id=int(data["case_id"]),
            built_at=str(data["built_at"]),
            built_by=str(data["built_by"]),
            reporter=Reporter(**data["reporter"]),
            incident_at=str(data["incident_at"]),
            files=files,
            report_id=data.get("report_id"),
            accounts=tuple(data.get("accounts") or ()),
            urls=tuple(data.get("urls") or ()),
            upload_ids=tuple(data.get("upload_ids") or ()),
            incident_type=str(data.get("incident_type") or "child_sexual_abuse_material"),
            extra=dict(data.get("extra") or {}),
        )


def _iso(at: datetime) -> str:
    value = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return value.isoformat(timespec="seconds")


def _file(item: CaseItem) -> ReportedFile:
    decision = item.decision
    assert decision is not None
    if decision.classification is None:
        raise ConflictError(
            f"item {item.id} of case {item.case_id} was confirmed without a classification",
            hint="have a reviewer confirm it again with A1, A2, B1 or B2",
        )
    source = item.source or {}
    return ReportedFile(
        item_id=item.id,
        file_name=item.file_name or source.get("file_name") or f"{item.sha256}",
        sha256=item.sha256,
        md5=item.md5,
        size=item.size,
        media_kind=item.media_kind,
        viewed_by_esp=bool(item.viewed),
        classification=decision.classification,
        annotations=tuple(decision.annotations),
        reviewed_by=decision.reviewer,
        reviewed_at=_iso(decision.at),
        first_seen=_iso(item.first_seen),
        last_seen=_iso(item.last_seen),
        evidence_id=item.evidence_id,
        url=source.get("url"),
        upload_id=source.get("upload_id"),
        account_id=source.get("account_id"),
        matches=tuple(
            {
                "bank": m.bank,
                "entry_id": m.entry_id,
                "signal_type": m.signal_type,
                "distance": m.distance,
                "category": m.category,
            }
            for m in item.matches
        ),
    )


def build_report(
    case: CaseView, reporter: Reporter, *, actor: str, report_id: int | None = None
) -> ReportData:
    """The report of a case: its confirmed items only. Refuses a case with none."""
    confirmed: Sequence[CaseItem] = case.confirmed_items
    if not confirmed:
        raise ConflictError(
            f"case {case.id} has no confirmed items",
            hint="a report is built only after a reviewer confirms at least one item",
        )
    files = tuple(_file(i) for i in confirmed)
    accounts = tuple(sorted({f.account_id for f in files if f.account_id}))
    return ReportData(
        case_id=case.id,
        built_at=_iso(datetime.now(UTC)),
        built_by=actor,
        reporter=reporter,
        incident_at=min(f.first_seen for f in files),
        files=files,
        report_id=report_id,
        accounts=accounts,
        urls=tuple(dict.fromkeys(f.url for f in files if f.url)),
        upload_ids=tuple(dict.fromkeys(f.upload_id for f in files if f.upload_id)),
    )
