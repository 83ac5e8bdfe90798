"""What every part of the hotline pipeline shares: settings, the repository, the lease table,
the clock, the safe fetcher, and the services of other contexts it calls (checks that hash and
match, evidence, the review cases and the share-back path, the feed signer).

Built once by :class:`~amparo.hotline.service.HotlineService`; parts are given it (and the
other parts they call) when they are built, so the parts form no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from amparo.checks import Checks
from amparo.clock import Clock, utc_now
from amparo.config import Settings
from amparo.evidence import EvidenceStore
from amparo.exchanges.proposals import ProposalService
from amparo.exchanges.signing import FeedSigner
from amparo.fetch import Fetcher
from amparo.review import CaseService
from amparo.store import Store
from amparo.store.hotline import HotlineRepository
from amparo.store.leases import LeaseRepository
from amparo.url_policy import Resolver, system_resolver


@dataclass
class HotlineContext:
    settings: Settings
    store: Store
    records: HotlineRepository
    leases: LeaseRepository
    fetcher: Fetcher
    checks: Checks
    evidence: EvidenceStore
    cases: CaseService | None = None
    proposals: ProposalService | None = None
    """The share-back path: a confirmed unknown item proposed to a bank (curator approval)."""
    signer: Callable[[], FeedSigner] | None = None
    """The installation's feed signer (forwards to partner hotlines are signed)."""
    clock: Clock = utc_now
    resolver: Resolver = system_resolver
