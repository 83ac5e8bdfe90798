"""Verification: crawl a reported URL, hash and match what it shows, keep unknown media for an
analyst.

Each medium the crawl (:mod:`amparo.hotline.crawl`) fetches is hashed and looked up as it
arrives (on a worker thread, while the next ones download) and its bytes dropped at once:

- it matched a bank entry: a ``verified`` item (assessment ``baseline``) with its matches;
  matching only: a hotline's find is not a platform's upload, so no action rule runs;
- it matched a known-benign (negative) bank only: no item (counted ``benign``);
- it is media nothing matched: preserved, encrypted, as evidence (``hotline_unknown_retention_
  days``) and an ``unknown`` item waits for an analyst; at most ``hotline_preserve_max_bytes``
  of it per report: past that budget the item is recorded (hashes, URL, a note) unpreserved;
- it does not decode as media (an HTML error page served as ``image/jpeg``): no item
  (counted ``skipped``).

The report then moves to ``confirmed`` (a confirmed item), ``assessment`` (unknown items
wait) or ``closed`` (nothing to act on). A page that cannot be fetched leaves it
``unreachable``, retried with backoff up to ``hotline_crawl_attempts`` tries, then ``closed``;
an address the policy refuses closes it at once. Any other failure of one report's crawl (a
bug, a dependency down) counts as a try the same way, so no report holds the queue. Items, the
report's change and the ``hotline.crawl`` audit entry commit in one unit of work. A lease per
report keeps two processes from crawling the same one.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from amparo.config import SYSTEM_ACTOR
from amparo.errors import AmparoError, MediaTooLargeError, UrlRefusedError
from amparo.events import Source
from amparo.fetch import Fetched
from amparo.hashing import MediaHashes
from amparo.hotline.attribution import Attributor
from amparo.hotline.context import HotlineContext
from amparo.hotline.crawl import Crawler, CrawlLimits, CrawlResult
from amparo.hotline.model import CONFIRMED_ASSESSMENTS, UrlReport
from amparo.matching import Match
from amparo.media.sniff import MIME_TYPES, media_kind
from amparo.store.leases import default_holder

log = logging.getLogger(__name__)

CRAWL_STATUSES = ("new", "unreachable")
"""Reports a scheduled crawl picks up (when their ``next_crawl_at`` is due)."""
RETRY_BASE = timedelta(minutes=10)
"""An unreachable page is tried again after 10 min, 20, 40, ... (doubling each time)."""
MAX_MEDIA_URLS = 500
"""Most media URLs kept on a report (``media_urls``)."""
MAX_ERRORS_AUDITED = 20
UNPRESERVED_NOTE = (
    "not preserved: this report's budget for unknown media (hotline_preserve_max_bytes, "
    "{limit:,} bytes) was spent; assess it on its URL and hashes"
)


@dataclass(frozen=True)
class Found:
    """One medium after hashing and matching (its bytes already dropped)."""

    url: str
    hashes: MediaHashes
    matches: tuple[Match, ...] = ()
    benign: bool = False
    media: bool = True
    """It decodes as an image or video (else it is skipped unless it matched)."""
    evidence_id: int | None = None
    note: str | None = None
    """Why unknown media was not preserved."""


class PreserveBudget:
    """Bytes of unknown media one report may still preserve (``left``); taken from by the
    crawl's worker threads. Content it holds already (by SHA-256) costs nothing again."""

    def __init__(self, left: int, held: set[str] | None = None) -> None:
        self.left = left
        self.held = set(held or ())
        self._lock = threading.Lock()

    def take(self, sha256: str, size: int) -> bool:
        """Whether this content may be preserved: held already, or ``size`` bytes are left
        (then taken)."""
        with self._lock:
            if sha256 in self.held:
                return True
            if size > self.left:
                return False
            self.left -= size
            self.held.add(sha256)
            return True


@dataclass
class CrawlTally:
    """What one crawl found, for the audit entry."""

    verified: int = 0
    unknown: int = 0
    skipped: int = 0
    benign: int = 0
    unpreserved: int = 0
    reappeared: list[dict[str, Any]] = field(default_factory=list)


class Verifier:
    def __init__(self, ctx: HotlineContext, attributor: Attributor) -> None:
        self.ctx = ctx
        self.attributor = attributor
        self.limits = CrawlLimits.from_settings(ctx.settings)
        self.crawler = Crawler(ctx.fetcher, self.limits)
        self.holder = default_holder()

    @property
    def lease_seconds(self) -> float:
        """How long a crawl's lease lasts: its worst case on the network, plus hashing."""
        return self.limits.worst_seconds(self.ctx.fetcher.limits.timeout_seconds) + 300.0

    def crawl_due(self, now: datetime | None = None, *, limit: int = 20) -> int:
        """Crawl reports waiting for it (new, or unreachable and due again); how many."""
        now = now or self.ctx.clock()
        done = 0
        failed: Exception | None = None
        for report_id in self.ctx.records.due("next_crawl_at", CRAWL_STATUSES, now, limit):
            name = f"hotline:crawl:{report_id}"
            token = self.ctx.leases.acquire(name, self.holder, self.lease_seconds)
            if token is None:
                continue  # another process is crawling it
            try:
                # It may have been crawled between the query and the lease.
                report = self.ctx.records.get(report_id)
                if report.status not in CRAWL_STATUSES or (
                    report.next_crawl_at is not None and report.next_crawl_at > now
                ):
                    continue
                self.crawl(report_id)
                done += 1
            except Exception as exc:
                # One report's failure (not a page's: those are recorded) does not hold up
                # the others: it counts as a try, with backoff, so the report cannot come
                # back first in every pass; the step still fails, after them, for the
                # scheduler to count.
                log.exception("crawling URL report %d failed", report_id)
                failed = failed or exc
                self._count_failure(report_id, exc)
            finally:
                self.ctx.leases.release(name, token)
        if failed is not None:
            raise failed
        return done

    def crawl(self, report_id: int, *, actor: str = SYSTEM_ACTOR) -> UrlReport:
        """Crawl one report now: fetch, extract, hash, match, preserve unknown media; the
        report's status moves to assessment, confirmed, closed or unreachable."""
        report = self.ctx.records.get(report_id)
        dihedral = self.ctx.checks.wants_dihedral()
        # The report's preserved media count against its budget; content it already holds
        # is preserved again (its retention renewed) at no cost.
        held = {i.sha256: i.size or 0 for i in self.ctx.records.items(report_id) if i.evidence_id}
        left = self.ctx.settings.hotline_preserve_max_bytes - sum(held.values())
        budget = PreserveBudget(left, set(held))

        def handle(url: str, fetched: Fetched) -> Found:
            return self._examine(report, url, fetched.content, dihedral, actor, budget)

        result = self.crawler.crawl(report.url, handle)
        if result.page_error is not None:
            return self._unreachable(report, result.page_error, actor)
        return self._record(report, result, actor)

    # -- one medium (on a crawl worker thread) ----------------------------------------------

    def _examine(
        self,
        report: UrlReport,
        url: str,
        data: bytes,
        dihedral: bool,
        actor: str,
        budget: PreserveBudget,
    ) -> Found:
        checks = self.ctx.checks
        hashes = checks.hash_bytes(data, dihedral=dihedral)
        result = checks.match_hashes([hashes], source="hotline")[0]
        is_media = media_kind(hashes.media_type) is not None and (
            hashes.pdq is not None or hashes.vpdq is not None
        )
        found = Found(url, hashes, tuple(result.matches), bool(result.benign), is_media)
        if found.matches or found.benign or not is_media:
            return found
        if not budget.take(hashes.sha256, len(data)):
            limit = self.ctx.settings.hotline_preserve_max_bytes
            return Found(url, hashes, note=UNPRESERVED_NOTE.format(limit=limit))
        item = self.ctx.evidence.preserve(
            data,
            reason=f"hotline:url-report:{report.id}",
            actor=actor,
            source=Source(kind="hotline", url=url),
            retention_days=self.ctx.settings.hotline_unknown_retention_days,
        )
        return Found(url, hashes, evidence_id=item.id)

    # -- outcomes ---------------------------------------------------------------------------

    def _record(self, report: UrlReport, result: CrawlResult[Found], actor: str) -> UrlReport:
        records = self.ctx.records
        now = self.ctx.clock()
        tally = CrawlTally()
        with self.ctx.store.transaction(refresh=False) as tx:
            for medium in result.media:
                found = medium.result
                if found is None:
                    continue
                if found.benign:
                    tally.benign += 1
                    continue
                if not found.matches and not found.media:
                    tally.skipped += 1
                    continue
                hashes = found.hashes
                values: dict[str, Any] = {
                    "md5": hashes.md5,
                    "pdq": hashes.pdq,
                    "size": hashes.size,
                    "mime": MIME_TYPES.get(hashes.media_type or ""),
                    "media_kind": media_kind(hashes.media_type),
                }
                if found.matches:
                    tally.verified += 1
                    values.update(
                        status="verified",
                        matches=[m.to_json() for m in found.matches],
                        assessment="baseline",
                    )
                else:
                    tally.unknown += 1
                    values.update(status="unknown", evidence_id=found.evidence_id)
                    if found.note is not None:
                        tally.unpreserved += 1
                        values["note"] = found.note
                _item, new = records.add_item(
                    report.id, media_url=found.url, sha256=hashes.sha256, at=now, **values
                )
                if new:
                    removed_in = records.removed_elsewhere(
                        report.host, hashes.sha256, exclude_report=report.id
                    )
                    if removed_in:
                        tally.reappeared.append(
                            {"sha256": hashes.sha256, "removed_in_reports": removed_in}
                        )
            changes: dict[str, Any] = {
                "crawled_at": now,
                "crawl_error": None,
                "next_crawl_at": None,
                "media_urls": result.media_urls[:MAX_MEDIA_URLS],
            }
            if tally.reappeared:
                changes["reappearances"] = report.reappearances + len(tally.reappeared)
            status = self._status_after(report)
            if status is not None:
                changes["status"] = status
            updated = records.update(report.id, at=now, **changes)
            details: dict[str, Any] = {
                "url": report.url,
                "final_url": result.final_url,
                "status": updated.status,
                "pages": result.pages,
                "media_found": len(result.media) + result.media_over_cap,
                "media_fetched": len(result.media) - result.media_errors,
                "verified": tally.verified,
                "unknown": tally.unknown,
                "unknown_not_preserved": tally.unpreserved,
                "skipped_not_media": tally.skipped,
                "benign": tally.benign,
                "errors": len(result.errors) + result.media_errors,
                "truncated": result.truncated,
            }
            if result.errors:
                details["page_errors"] = result.errors[:MAX_ERRORS_AUDITED]
            if tally.reappeared:
                # Content removed at this host before and served again: counts against the
                # provider.
                details["reappeared"] = tally.reappeared
            tx.audit(actor, "hotline.crawl", f"url-report:{report.id}", details)
        return updated

    def _status_after(self, report: UrlReport) -> str | None:
        """The status the report's items call for, or None to leave it as it is (a report
        already noticed, forwarded or removed is not moved back by a re-crawl)."""
        if report.status not in ("new", "unreachable", "assessment", "closed"):
            return None
        items = self.ctx.records.items(report.id)
        if any(i.status == "verified" or i.assessment in CONFIRMED_ASSESSMENTS for i in items):
            return "confirmed"
        if any(i.status == "unknown" for i in items):
            return "assessment"
        return "closed"

    def _unreachable(self, report: UrlReport, error: AmparoError, actor: str) -> UrlReport:
        """The reported URL could not be fetched: retry later with backoff, or close it (a
        refused address, or one larger than any page or medium is read, at once: trying again
        would fail the same way; any other failure after ``hotline_crawl_attempts`` tries)."""
        if isinstance(error, UrlRefusedError | MediaTooLargeError):
            return self._attempted(
                report, actor, f"refused: {error.message}", error.code, close=True
            )
        return self._attempted(
            report,
            actor,
            error.message,
            error.code,
            retry_status="unreachable",
            gave_up="unreachable",
        )

    def _count_failure(self, report_id: int, exc: Exception) -> None:
        """A report's crawl failed unexpectedly (not its page: a bug, a dependency down): count
        it as a try, retried with backoff while the report keeps its status, then closed after
        ``hotline_crawl_attempts`` tries. If even that cannot be recorded, it is logged."""
        try:
            report = self.ctx.records.get(report_id)
            if report.status not in CRAWL_STATUSES:
                return  # the crawl got as far as recording its outcome
            message = f"crawl failed: {type(exc).__name__}: {exc}"
            self._attempted(report, SYSTEM_ACTOR, message, "crawl_failed", gave_up="failed")
        except Exception:
            log.exception("recording the failed crawl of URL report %d failed", report_id)

    def _attempted(
        self,
        report: UrlReport,
        actor: str,
        message: str,
        code: str,
        *,
        close: bool = False,
        retry_status: str | None = None,
        gave_up: str = "",
    ) -> UrlReport:
        """Count one more try of ``report``'s crawl that found nothing: close it (``close``,
        or the tries are used up: ``crawl_error`` then says it ``gave_up`` after N tries), or
        schedule the next try after 10 minutes, 20, 40, ... (moving it to ``retry_status``)."""
        now = self.ctx.clock()
        attempts = report.crawl_attempts + 1
        limit = self.ctx.settings.hotline_crawl_attempts
        status: str | None
        if close:
            status, next_at = "closed", None
        elif attempts >= limit:
            status, next_at = "closed", None
            message = f"{gave_up} after {attempts} tries: {message}"
        else:
            status, next_at = retry_status, now + RETRY_BASE * 2 ** (attempts - 1)
        changes: dict[str, Any] = {
            "crawl_error": message[:1000],
            "crawl_attempts": attempts,
            "next_crawl_at": next_at,
        }
        if status is not None and report.status in CRAWL_STATUSES:
            changes["status"] = status
        with self.ctx.store.transaction(refresh=False) as tx:
            updated = self.ctx.records.update(report.id, at=now, **changes)
            tx.audit(
                actor,
                "hotline.crawl",
                f"url-report:{report.id}",
                {
                    "url": report.url,
                    "status": updated.status,
                    "error": message[:1000],
                    "error_code": code,
                    "attempts": attempts,
                    "next_crawl_at": next_at.isoformat() if next_at else None,
                    "pages": 0,
                    "media_found": 0,
                    "verified": 0,
                    "unknown": 0,
                    "errors": 1,
                    "truncated": False,
                },
            )
        return updated


__all__ = ["Verifier"]
