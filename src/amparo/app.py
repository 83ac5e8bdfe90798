"""The application core: what the CLI, the scanner and the API call. No SQL, no HTTP here."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from amparo.actions import Actioner
from amparo.banks.formats import ImportResult, iter_entries, write_entries
from amparo.banks.model import BankInfo, EntryRecord
from amparo.config import LOCAL_ACTOR, Settings, load_settings
from amparo.evidence import EvidenceStore
from amparo.files import private_home
from amparo.hashing import MediaHashes, hash_file
from amparo.hashing import hash_bytes as hash_media_bytes
from amparo.matching import Match, Matcher, Query, QueryResult
from amparo.media.sniff import HEAD_BYTES, sniff
from amparo.reports import ReportService
from amparo.review import CaseService
from amparo.signals import normalize_signal
from amparo.store import AuditEntry, Store
from amparo.store.uow import UnitOfWork
from amparo.video_matching import video_entries

log = logging.getLogger("amparo")


@dataclass
class ImportReport:
    bank: str
    added: int = 0
    updated: int = 0
    removed: int = 0
    read: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    problem_count: int = 0
    warnings: list[str] = field(default_factory=list)
    signals: dict[str, str] = field(default_factory=dict)
    """Media added (``add_media``): signal type -> value of each entry written."""
    not_added: dict[str, str] = field(default_factory=dict)
    """Media added (``add_media``): signal type -> why that hash was computed but not added."""


class Amparo:
    """One Amparo installation: the composition root. It builds every service once, each
    given the parts it needs (never the whole application), and offers the use cases the
    shells (CLI, HTTP API, web UI, scan engines, demo) call.

    Dependency order: store -> matcher; evidence(store) -> cases(store, evidence) ->
    reports(store, cases, evidence) -> actions(store, evidence, cases, reports).
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings = settings or load_settings()
        private_home(settings.home)  # 0700; an existing one open to others is tightened
        self.store = store = Store(settings.resolved_database_url)
        store.configure_audit(settings)  # signed checkpoints of the audit chain
        # Webhook secrets are sealed with the evidence keyring (created on first use). Its
        # own instance: the keyring is re-read when another instance or process changes it.
        keyring_owner = EvidenceStore(settings, store)
        store.configure_secrets(lambda: keyring_owner.keyring(create=True))
        self.matcher = Matcher(store, settings)
        self.wire()

    def wire(
        self,
        *,
        evidence: EvidenceStore | None = None,
        cases: CaseService | None = None,
        reports: ReportService | None = None,
    ) -> None:
        """Build the acting services in dependency order; a part given here is used instead
        of a new one and everything that depends on it is rebuilt (the seam tests use)."""
        settings, store = self.settings, self.store
        self.evidence = evidence or EvidenceStore(settings, store)
        self.cases = cases or CaseService(settings, store, self.evidence)
        if evidence is None and cases is None:
            # A purge also discards the evidence of items decided false positives.
            self.evidence.on_purge(self.cases.discard_false_positives)
        self.reports = reports or ReportService(settings, store, self.cases, self.evidence)
        self.actions = Actioner(
            settings, store, evidence=self.evidence, cases=self.cases, reports=self.reports
        )

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Amparo:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def transaction(self, *, refresh: bool = True) -> AbstractContextManager[UnitOfWork]:
        """One unit of work across services (see :mod:`amparo.store.uow`)."""
        return self.store.transaction(refresh=refresh)

    # -- hashing ----------------------------------------------------------------------------

    def hash_bytes(self, data: bytes, *, dihedral: bool = False) -> MediaHashes:
        """Hash media: a photo gets PDQ, a video vPDQ (sampled at ``video_sample_fps``)."""
        return hash_media_bytes(data, self.settings, dihedral=dihedral)

    def hash_file(self, path: Path, *, dihedral: bool = False) -> MediaHashes:
        """Hash a file under this installation's limits (see :func:`amparo.hashing.hash_file`)."""
        return hash_file(path, self.settings, dihedral=dihedral)

    # -- banks ------------------------------------------------------------------------------

    def create_bank(self, info: BankInfo, *, actor: str = LOCAL_ACTOR) -> BankInfo:
        return self.store.create_bank(info, actor=actor)

    def get_bank(self, name: str) -> BankInfo:
        return self.store.get_bank(name)

    def list_banks(self) -> list[BankInfo]:
        return self.store.list_banks()

    def update_bank(self, name: str, *, actor: str = LOCAL_ACTOR, **changes: Any) -> BankInfo:
        return self.store.update_bank(name, actor=actor, **changes)

    def delete_bank(self, name: str, *, actor: str = LOCAL_ACTOR) -> None:
        self.store.delete_bank(name, actor=actor)

    def import_entries(
        self,
        bank: str,
        stream: TextIO,
        fmt: str,
        *,
        signal_type: str | None = None,
        strict: bool = False,
        category_map: Mapping[int | str, str] | str | None = None,
        skip_ignored: bool = False,
        replace: bool = False,
        source_name: str | None = None,
        actor: str = LOCAL_ACTOR,
    ) -> ImportReport:
        """Import a hash list into ``bank``: all or nothing (a strict failure changes nothing)."""
        self.store.get_bank(bank)
        result = ImportResult(entries=[], problems=[])
        counter = _Counter(
            iter_entries(
                stream,
                fmt,
                signal_type=signal_type,
                strict=strict,
                category_map=category_map,
                skip_ignored=skip_ignored,
                source_name=source_name,
                report=result,
                require_entries=True,  # nothing valid read: fail, change nothing
            )
        )
        counts = self.store.add_entries(
            bank,
            counter,
            actor=actor,
            replace=replace,
            action="bank.import",
            details={"format": fmt, "source": source_name or ""},
        )
        return ImportReport(
            bank=bank,
            added=counts.added,
            updated=counts.updated,
            removed=counts.removed,
            read=counter.count,
            problems=result.problems,
            problem_count=result.problem_count,
            warnings=result.warnings,
        )

    def export_entries(
        self,
        bank: str,
        stream: TextIO,
        fmt: str,
        *,
        category_map: Mapping[int | str, str] | str | None = None,
    ) -> int:
        return write_entries(stream, fmt, self.store.iter_entries(bank), category_map=category_map)

    def add_entries(
        self, bank: str, records: Iterable[EntryRecord], *, actor: str = LOCAL_ACTOR
    ) -> ImportReport:
        normalized = []
        for record in records:
            record.signal_type, record.signal = normalize_signal(record.signal_type, record.signal)
            normalized.append(record)
        counts = self.store.add_entries(bank, normalized, actor=actor)
        return ImportReport(
            bank=bank, added=counts.added, updated=counts.updated, read=len(normalized)
        )

    def add_media(
        self,
        bank: str,
        data: bytes,
        *,
        category: str | None = None,
        tags: Sequence[str] = (),
        source_id: str | None = None,
        note: str | None = None,
        actor: str = LOCAL_ACTOR,
        hashes: MediaHashes | None = None,
    ) -> tuple[MediaHashes, ImportReport]:
        """Hash media and add it to ``bank``: a photo's PDQ (when usable) and MD5; a video's
        vPDQ (sampled at ``video_bank_sample_fps``), MD5 and SHA-256. A photo's ``hashes``,
        when the caller has them already (from :meth:`hash_bytes`), are used as they are.

        The report's ``signals`` are the entries written and ``not_added`` says why a
        perceptual hash that was computed (or tried) was left out: what to show a user."""
        not_added: dict[str, str] = {}
        if sniff(data[:HEAD_BYTES]) == "video":
            hashes, records = video_entries(
                data,
                self.settings,
                category=category,
                tags=tags,
                source_id=source_id,
                note=note,
                not_added=not_added,
            )
        else:
            if hashes is None:
                hashes = self.hash_bytes(data)
            signals = [("md5", hashes.md5)]
            if hashes.pdq is not None:
                minimum = self.settings.pdq_min_quality
                if (hashes.pdq_quality or 0) < minimum:
                    log.warning("PDQ quality %s too low; adding the MD5 only", hashes.pdq_quality)
                    not_added["pdq"] = (
                        f"quality {hashes.pdq_quality} is below pdq_min_quality {minimum} "
                        "(too flat or small to match reliably)"
                    )
                else:
                    signals.insert(0, ("pdq", hashes.pdq))
            elif hashes.error:
                not_added["pdq"] = hashes.error
            records = [
                EntryRecord(
                    t, v, category=category, tags=list(tags), source_id=source_id, note=note
                )
                for t, v in signals
            ]
        report = self.add_entries(bank, records, actor=actor)
        report.signals = {r.signal_type: r.signal for r in records}
        report.not_added = not_added
        return hashes, report

    def remove_signals(
        self, bank: str, signals: Sequence[tuple[str, str]], *, actor: str = LOCAL_ACTOR
    ) -> int:
        return self.store.remove_entries(bank, _normalize_all(signals), actor=actor)

    def set_signals_enabled(
        self,
        bank: str,
        signals: Sequence[tuple[str, str]],
        enabled: bool,
        *,
        actor: str = LOCAL_ACTOR,
    ) -> int:
        return self.store.set_entries_enabled(bank, _normalize_all(signals), enabled, actor=actor)

    def audit_log(self, limit: int = 100, target: str | None = None) -> list[AuditEntry]:
        return self.store.audit_entries(limit, target)

    # -- matching ---------------------------------------------------------------------------

    def wants_dihedral(self, banks: Sequence[str] | None = None) -> bool:
        return self.matcher.wants_dihedral(banks)

    def match_signals(
        self, signals: Sequence[tuple[str, str]], banks: Sequence[str] | None = None
    ) -> list[list[Match]]:
        """Look up bare signals (``(type, value)``); one list of matches per signal."""
        queries = [Query(signals=dict([normalize_signal(t, v)])) for t, v in signals]
        return [r.matches for r in self.matcher.match(queries, banks)]

    def match_hashes(
        self, hashes: Sequence[MediaHashes], banks: Sequence[str] | None = None
    ) -> list[QueryResult]:
        """Look up the signals of hashed media; one result per item."""
        queries = [
            Query(signals=h.signals(), pdq_quality=h.pdq_quality, pdq_dihedral=h.pdq_dihedral)
            for h in hashes
        ]
        return self.matcher.match(queries, banks)


def _normalize_all(signals: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return [normalize_signal(t, v) for t, v in signals]


class _Counter:
    """Counts what passes through an iterator."""

    def __init__(self, it: Iterable[EntryRecord]) -> None:
        self._it = iter(it)
        self.count = 0

    def __iter__(self) -> _Counter:
        return self

    def __next__(self) -> EntryRecord:
        item = next(self._it)
        self.count += 1
        return item
