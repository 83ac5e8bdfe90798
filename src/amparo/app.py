"""The application core: what the CLI, the scanner and the API call. No SQL, no HTTP here."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from amparo.actions import Actioner
from amparo.banks.service import BankService
from amparo.config import Settings, load_settings
from amparo.evidence import EvidenceStore
from amparo.files import private_home
from amparo.hashing import MediaHashes, hash_file
from amparo.hashing import hash_bytes as hash_media_bytes
from amparo.matching import Match, Matcher, Query, QueryResult
from amparo.reports import ReportService
from amparo.review import CaseService
from amparo.signals import normalize_signal
from amparo.store import AuditEntry, Store
from amparo.store.uow import UnitOfWork


class Amparo:
    """One Amparo installation: the composition root. It builds every service once, each
    given the parts it needs (never the whole application), and offers the use cases the
    shells (CLI, HTTP API, web UI, scan engines, demo) call.

    Dependency order: store -> banks, matcher; evidence(store) -> cases(store, evidence) ->
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
        self.banks = BankService(settings, store)
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

    def audit_log(self, limit: int = 100, target: str | None = None) -> list[AuditEntry]:
        return self.store.audit_log.entries(limit, target)

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
