"""The hotline pipeline's application service (``amparo.hotline``): URL reports from intake
to confirmed removal, over the parts that each own one step.

``intake`` (:mod:`.intake`) records reports; ``verifier`` (:mod:`.verify`) crawls reported pages
through the safe fetcher, hashes and matches what they show, and preserves unknown media for an
analyst; ``assessments`` (:mod:`.assessment`) records analysts' ICCAM classifications;
``attributor`` (:mod:`.attribution`) finds the host's network, provider, country and abuse
contact; ``notifier`` (:mod:`.notifying`) sends notices until removal, or forwards to the
partner hotline of the hosting country; ``rechecker`` (:mod:`.rechecks`) confirms removal and
notices reappearance; ``figures`` (:mod:`.figures`) computes what a hotline publishes;
``runner`` (:mod:`.runner`) is the scheduler, one pass at a time under a database lease.

Each part is given the shared :class:`~amparo.hotline.context.HotlineContext` and the parts it
calls; every change and its audit entry commit in one unit of work.
"""

from __future__ import annotations

from collections.abc import Callable

from amparo.checks import Checks
from amparo.clock import Clock, utc_now
from amparo.config import Settings
from amparo.evidence import EvidenceStore
from amparo.exchanges.proposals import ProposalService
from amparo.exchanges.signing import FeedSigner
from amparo.fetch import Fetcher, FetchLimits
from amparo.hotline.assessment import Assessments
from amparo.hotline.attribution import Attributor
from amparo.hotline.context import HotlineContext
from amparo.hotline.figures import Figures
from amparo.hotline.intake import Intake
from amparo.hotline.notifying import Notifier
from amparo.hotline.rechecks import Rechecker
from amparo.hotline.runner import HotlineRunner
from amparo.hotline.verify import Verifier
from amparo.review import CaseService
from amparo.store import Store
from amparo.store.hotline import HotlineRepository
from amparo.store.leases import LeaseRepository
from amparo.url_policy import Resolver, system_resolver


class HotlineService:
    """URL reports, their crawl, assessment, attribution, notices and removal."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        checks: Checks,
        evidence: EvidenceStore,
        cases: CaseService | None = None,
        proposals: ProposalService | None = None,
        signer: Callable[[], FeedSigner] | None = None,
        clock: Clock = utc_now,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.settings = settings
        self.context = ctx = HotlineContext(
            settings=settings,
            store=store,
            records=HotlineRepository(store.db),
            leases=LeaseRepository(store.db, clock=clock),
            fetcher=Fetcher(FetchLimits.from_settings(settings), resolver=resolver),
            checks=checks,
            evidence=evidence,
            cases=cases,
            proposals=proposals,
            signer=signer,
            clock=clock,
            resolver=resolver,
        )
        self.records = ctx.records
        self.intake = Intake(ctx)
        self.attributor = Attributor(ctx)
        self.verifier = Verifier(ctx, self.attributor)
        self.assessments = Assessments(ctx)
        self.notifier = Notifier(ctx)
        self.rechecker = Rechecker(ctx)
        self.figures = Figures(ctx)
        self.runner = HotlineRunner(ctx, self.verifier, self.notifier, self.rechecker)
