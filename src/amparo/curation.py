"""What the curator console (``/console``) shows and does beyond the bank, rule and webhook
calls the API already makes: the overview's figures, entry search, each rule's and
endpoint's audit trail, trying a rule on a described match, and a logged webhook test.

Counts only: reviewers' exposure is a number of items per day, never which items; matches per
bank per day come from the match volume every process counts (:mod:`amparo.tally`), and
content sent for review per bank from the review items rules opened (see
:mod:`amparo.store.curation`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from amparo.actions import Deliverer, Rule
from amparo.banks.model import BankInfo, EntryView
from amparo.clock import Clock, utc_now
from amparo.errors import InputError
from amparo.events import SOURCE_KINDS, MatchedContent, Source
from amparo.exchanges.model import CollaborationStatus
from amparo.matching import PATHS, Match
from amparo.store import AuditEntry
from amparo.store.curation import CurationReads

if TYPE_CHECKING:
    from amparo.app import Amparo
    from amparo.url_policy import UrlPolicy

DAYS = 14
"""How many days (UTC) the overview's per-day figures cover, today included."""
WAITING = ("waiting",)
ESCALATED = ("escalated",)
MAX_QUERY = 1000


@dataclass(frozen=True)
class QueueFigures:
    waiting: int
    escalated: int
    oldest_waiting: datetime | None
    oldest_age: timedelta | None


@dataclass(frozen=True)
class Overview:
    banks: list[BankInfo]
    queue: QueueFigures
    days: list[date]
    exposure: dict[str, list[int]]
    """Reviewer -> distinct items revealed on each of ``days``."""
    finds: dict[str, list[int]]
    """Bank -> lookups that matched it on each of ``days``, all sources (match volume)."""
    finds_by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    """Bank -> source kind (``api``, ``scan``...) -> its matches over ``days``."""
    reviewed: dict[str, list[int]] = field(default_factory=dict)
    """Bank -> content the rules sent for review, first seen on each of ``days``."""
    exchanges: list[CollaborationStatus] = field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        """Every source kind in :attr:`finds_by_source`, sorted."""
        return sorted({s for by in self.finds_by_source.values() for s in by})


@dataclass(frozen=True)
class SampleMatch:
    """A match described by a curator, to see whether a rule would act on it."""

    bank: str
    signal_type: str = "pdq"
    distance: int = 0
    category: str | None = None
    source_kind: str = "api"
    path: str = "plain"
    """How the match was found (:data:`amparo.matching.PATHS`)."""


class CurationService:
    """The console's use cases over one installation."""

    def __init__(self, amparo: Amparo, *, clock: Clock = utc_now) -> None:
        self.amparo = amparo
        self.clock = clock
        self.reads = CurationReads(amparo.store.db)

    def overview(self, *, days: int = DAYS) -> Overview:
        now = self.clock()
        today = now.astimezone(UTC).date()
        span = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
        start = datetime.combine(span[0], datetime.min.time(), tzinfo=UTC)
        position = {d: i for i, d in enumerate(span)}
        seen: dict[str, set[tuple[date, str, int]]] = defaultdict(set)
        for reviewer, at, kind, item in self.reads.reveals_since(start):
            seen[reviewer].add((at.date(), kind, item))
        exposure: dict[str, list[int]] = {}
        for reviewer, items in sorted(seen.items()):
            per_day = Counter(day for day, _, _ in items)
            exposure[reviewer] = [per_day.get(d, 0) for d in span]
        finds: dict[str, list[int]] = {}
        by_source: dict[str, dict[str, int]] = {}
        for day, bank, source, n in self.reads.volume_since(span[0]):
            index = position.get(day)
            if index is None:
                continue
            finds.setdefault(bank, [0] * len(span))[index] += n
            sources = by_source.setdefault(bank, {})
            sources[source] = sources.get(source, 0) + n
        reviewed: dict[str, list[int]] = {}
        for at, banks in self.reads.finds_since(start):
            index = position.get(at.date())
            if index is None:
                continue
            for bank in banks:
                reviewed.setdefault(bank, [0] * len(span))[index] += 1
        oldest = self.reads.oldest_opened(WAITING)
        queue = QueueFigures(
            waiting=self.amparo.cases.count("waiting"),
            escalated=self.amparo.cases.count("escalated"),
            oldest_waiting=oldest,
            oldest_age=(now - oldest) if oldest is not None else None,
        )
        return Overview(
            banks=self.amparo.banks.list(),
            queue=queue,
            days=span,
            exposure=exposure,
            finds=dict(sorted(finds.items())),
            finds_by_source=dict(sorted(by_source.items())),
            reviewed=dict(sorted(reviewed.items())),
            exchanges=self.amparo.exchanges.list(),
        )

    def search_entries(self, text: str) -> list[EntryView]:
        """Entries whose id, source id or hash is ``text`` (exactly; hashes in any case)."""
        text = text.strip()
        if not text:
            return []
        if any(ord(c) < 0x20 or c == "\x7f" for c in text):
            raise InputError(
                "the search contains control characters",
                hint="search for one entry id, source id or hash",
            )
        if len(text) > MAX_QUERY:
            raise InputError(
                f"the search is over {MAX_QUERY} characters",
                hint="search for one entry id, source id or hash",
            )
        return self.reads.search_entries(text)

    def trail(self, target: str, *, limit: int = 50) -> list[AuditEntry]:
        """The audit log's newest entries about ``target`` (``rule:<name>``, ...)."""
        return self.amparo.audit.entries(limit, target)

    @staticmethod
    def try_rule(rule: Rule, sample: SampleMatch) -> bool:
        """Whether ``rule`` (as it stands, enabled or not) would act on a find of ``sample``."""
        if sample.source_kind not in SOURCE_KINDS:
            raise InputError(
                f"unknown source kind {sample.source_kind!r}", hint="use " + ", ".join(SOURCE_KINDS)
            )
        if sample.path not in PATHS:
            raise InputError(f"unknown match path {sample.path!r}", hint="use " + ", ".join(PATHS))
        content = MatchedContent(
            sha256="0" * 64,
            matches=(
                Match(
                    sample.bank,
                    0,
                    sample.signal_type,
                    sample.distance,
                    category=sample.category or None,
                    transform="flipx" if sample.path == "dihedral" else None,
                    path=sample.path,
                ),
            ),
            source=Source(kind=sample.source_kind),
        )
        return rule.conditions.matches(content)

    def test_webhook(self, name: str, *, actor: str, urls: UrlPolicy) -> tuple[bool, str]:
        """Send a signed test event to endpoint ``name`` now, under the service's address
        policy (a refused URL is reported, never connected to); audit-logged
        ``webhook.test``. Returns (delivered, what happened)."""
        outbox = self.amparo.actions.outbox
        deliverer = Deliverer.from_settings(outbox, self.amparo.settings, urls=urls)
        try:
            result = deliverer.send_test(name)
        finally:
            deliverer.close()
        said = f"HTTP {result.status}" if result.status is not None else ""
        if result.error:
            said = f"{said}: {result.error}" if said else result.error
        self.amparo.store.audit_log.append(
            "webhook.test",
            f"webhook:{name}",
            {"event_id": result.event_id, "delivered": result.delivered, "status": result.status},
            actor=actor,
        )
        return result.delivered, said
