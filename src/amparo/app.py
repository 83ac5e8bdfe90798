"""The composition root: every service built once, with its dependencies passed in.

No SQL, no HTTP here; the shells (CLI, API, web UI, scan engines, demo) call the services."""

from __future__ import annotations

from contextlib import AbstractContextManager

from amparo.actions import Actioner
from amparo.auditing import AuditService
from amparo.banks.service import BankService
from amparo.checks import Checks
from amparo.config import Settings, load_settings
from amparo.evidence import EvidenceStore
from amparo.exchanges.feeds import FeedService
from amparo.exchanges.proposals import ProposalService
from amparo.exchanges.retro import RetroService
from amparo.exchanges.service import ExchangeService
from amparo.files import private_home
from amparo.hotline.service import HotlineService
from amparo.matching import Matcher
from amparo.reports import ReportService
from amparo.review import CaseService
from amparo.store import Store
from amparo.store.match_volume import MatchVolumeRepository
from amparo.store.uow import UnitOfWork
from amparo.tally import MatchTally


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
        # Matches counted per bank, day and source in memory, added to the database now and
        # then (never a write per lookup): the console's match volume.
        self.tally = MatchTally(
            MatchVolumeRepository(store.db), keep_days=settings.match_volume_days
        )
        self.audit = AuditService(settings, store)
        # Hash sharing: collaborations feeding banks, feeds published to partners, the
        # share-back path, and retroactive matching of recent content against new entries.
        self.feeds = FeedService(settings, store, self.banks)
        # Loop detection compares provenance paths with the id feeds publish under.
        self.exchanges = ExchangeService(
            settings, store, self.banks, organisation=lambda: self.feeds.organisation
        )
        self.wire()
        # A fetch that changed entries matches the retained hashes at once (self.retro is
        # looked up per call: wire() may rebuild it).
        self.exchanges.after_fetch(lambda result: self.retro.on_entries_changed(result))

    def wire(
        self,
        *,
        evidence: EvidenceStore | None = None,
        cases: CaseService | None = None,
        reports: ReportService | None = None,
        actions: Actioner | None = None,
    ) -> None:
        """Build the acting services in dependency order; a part given here is used instead
        of a new one and everything that depends on it is rebuilt (the seam tests use: a
        service built over small fakes of what it needs, see the ``Protocol``s of
        :mod:`amparo.actions.engine` and :mod:`amparo.reports.service`)."""
        settings, store = self.settings, self.store
        self.evidence = evidence or EvidenceStore(settings, store)
        self.cases = cases or CaseService(settings, store, self.evidence)
        if evidence is None and cases is None:
            # A purge also discards the evidence of items decided false positives.
            self.evidence.on_purge(self.cases.discard_false_positives)
        if cases is None:
            # A reviewer's confirm / false positive goes back to the sources of the entries
            # the item matched (queued after the decision commits; see ExchangeService).
            self.cases.on_decision(self.exchanges.record_decision)
        self.reports = reports or ReportService(settings, store, self.cases, self.evidence)
        self.actions = actions or Actioner(
            settings, store, evidence=self.evidence, cases=self.cases, reports=self.reports
        )
        self.checks = Checks(settings, self.matcher, self.actions, self.tally)
        self.retro = RetroService(settings, store, self.checks)
        if self.retro.enabled:  # off: checks keep nothing and pay nothing
            self.checks.on_checked(self.retro.remember)
        self.proposals = ProposalService(
            settings,
            store,
            self.banks,
            self.cases,
            evidence=self.evidence,
            hasher=self.checks.hash_bytes,
        )
        # The hotline pipeline: URL reports crawled, assessed, attributed, noticed until removal.
        self.hotline = HotlineService(
            settings,
            store,
            checks=self.checks,
            evidence=self.evidence,
            cases=self.cases,
            proposals=self.proposals,
            signer=lambda: self.feeds.signer,
        )

    def flush_counts(self) -> None:
        """Store the match counts gathered so far (a failure is logged, never raised)."""
        self.tally.close()

    def close(self) -> None:
        self.tally.close()
        self.store.close()

    def __enter__(self) -> Amparo:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def transaction(self, *, refresh: bool = True) -> AbstractContextManager[UnitOfWork]:
        """One unit of work across services (see :mod:`amparo.store.uow`)."""
        return self.store.transaction(refresh=refresh)
