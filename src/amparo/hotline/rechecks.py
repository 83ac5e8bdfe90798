"""Removal re-checks: is the content still served, gone, or back?

A noticed (or forwarded) report is re-checked on the ``recheck_hours`` schedule (hours
between successive re-checks; the last value repeats). Each confirmed item's media URL is
fetched again through the safe fetcher (:mod:`amparo.hotline.sightings`), and the answer read
as:

* **still up**: the same SHA-256, or a perceptual match (its PDQ within ``pdq_threshold`` of
  the item's, or a match of the bank entries the item matched: a re-encoded copy);
* **gone, if the page agrees**: 404 or 410; the host no longer resolves, or its own name now
  resolves only to an address the address policy refuses (a sinkholed domain); or the URL
  serves something else (another picture, an HTML page);
* **inconclusive**: anything else (a timeout, a refused connection, a 5xx, a body over the
  size limit, a temporary resolver failure, a redirect to an address the policy refuses).
  Nothing changes; the next re-check tries again.

An item is never called gone on its media URL alone: a host can rename the file or add
``?v=2`` and keep showing it. The reported page is re-crawled first, with the verification
crawl's machinery and limits; when it still shows the content at any media URL, the item is
still up and its ``media_url`` moves there. The item is gone only when the page itself is
gone (404, 410, no longer resolving, sinkholed) or was read and no longer shows it; a page
that cannot be read now (a timeout, a 5xx, a refused redirect, or one of its media that could
not be fetched) makes the re-check inconclusive.

When every confirmed item is gone the report is ``removed`` (``removed_at`` now: the time to
removal counts from the first notice) and is still re-checked weekly for
``hotline_watch_days``. If a removed report's content is served again (at its old URL or
anywhere on the page), the report reopens (``confirmed``, noticed again on the notifier's next
pass) and the reappearance is counted on the item and the report.

A lease per report (``hotline:recheck:<id>``) keeps two processes (the scheduler and
``amparo hotline recheck``) from re-checking the same report at once, which would count one
reopening or reappearance twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from amparo.config import SYSTEM_ACTOR
from amparo.errors import AmparoError, ConfigError, ConflictError
from amparo.hashing import MediaHashes
from amparo.hotline.context import HotlineContext
from amparo.hotline.crawl import Crawler, CrawlLimits
from amparo.hotline.model import HotlineItem, UrlReport
from amparo.hotline.sightings import Probe, Seen, fetch_again, sweep_page
from amparo.signals.pdq import PdqSignal
from amparo.store.leases import default_holder

log = logging.getLogger(__name__)

RECHECKED_STATUSES = ("notified", "forwarded", "removed")
WATCH_INTERVAL = timedelta(days=7)
"""How often a removed report is re-checked for reappearance while it is watched."""


def recheck_schedule(spec: str) -> list[float]:
    """``recheck_hours``: hours between successive re-checks, e.g. ``"6,12,24,24,48,72"``."""
    try:
        hours = [float(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        hours = []
    if not hours or any(h <= 0 for h in hours):
        raise ConfigError(
            f"recheck_hours {spec!r} is not a list of positive hours",
            hint='write hours between re-checks separated by commas, e.g. "6,12,24,24,48,72"',
        )
    return hours


def next_recheck(spec: str, attempts: int, now: datetime) -> datetime:
    """When the re-check after ``attempts`` re-checks is due (the last interval repeats)."""
    hours = recheck_schedule(spec)
    return now + timedelta(hours=hours[min(max(attempts, 0), len(hours) - 1)])


def lease_name(report_id: int) -> str:
    """The lease a re-check of the report holds."""
    return f"hotline:recheck:{report_id}"


class Rechecker:
    """Re-checks noticed reports (see the module's docstring)."""

    def __init__(self, ctx: HotlineContext) -> None:
        self.ctx = ctx
        self.limits = CrawlLimits.from_settings(ctx.settings)
        self.crawler = Crawler(ctx.fetcher, self.limits)
        self.holder = default_holder()

    def lease_seconds(self, items: int = 0) -> float:
        """How long a re-check's lease lasts: every item's fetch and the page's re-crawl at
        their deadlines, plus hashing."""
        timeout = self.ctx.fetcher.limits.timeout_seconds
        fetches = max(items, self.limits.max_media)
        return self.limits.worst_seconds(timeout) + fetches * timeout + 300.0

    def recheck_due(self, now: datetime | None = None, *, limit: int = 50) -> int:
        """Re-check the reports whose re-check is due; how many. A report another process
        is re-checking is skipped."""
        now = now or self.ctx.clock()
        done = 0
        failed: Exception | None = None
        for report_id in self.ctx.records.due("next_recheck_at", RECHECKED_STATUSES, now, limit):
            name = lease_name(report_id)
            token = self.ctx.leases.acquire(name, self.holder, self.lease_seconds())
            if token is None:
                continue  # another process is re-checking it
            try:
                # It may have been re-checked between the query and the lease.
                report = self.ctx.records.get(report_id)
                if report.status not in RECHECKED_STATUSES or (
                    report.next_recheck_at is None or report.next_recheck_at > now
                ):
                    continue
                self._recheck(report, SYSTEM_ACTOR, token)
            except Exception as exc:
                log.exception("re-checking URL report %d failed; the others go on", report_id)
                failed = failed or exc
            else:
                done += 1
            finally:
                self.ctx.leases.release(name, token)
        if failed is not None:
            raise failed  # the scheduler counts the step failed (as crawl_due does)
        return done

    def recheck(self, report_id: int, *, actor: str = SYSTEM_ACTOR) -> UrlReport:
        """Re-check one report now: items gone are marked removed, the report removed when
        every confirmed item is; content back online reopens it."""
        ctx = self.ctx
        name = lease_name(report_id)
        token = ctx.leases.acquire(name, self.holder, self.lease_seconds())
        if token is None:
            raise ConflictError(
                f"URL report {report_id} is being re-checked by another process",
                hint="wait for that re-check to finish (`amparo hotline show "
                f"{report_id}` shows its outcome), then try again",
            )
        try:
            return self._recheck(ctx.records.get(report_id), actor, token)
        finally:
            ctx.leases.release(name, token)

    def _recheck(self, report: UrlReport, actor: str, token: str) -> UrlReport:
        ctx = self.ctx
        report_id = report.id
        if report.status not in (*RECHECKED_STATUSES, "confirmed"):
            raise ConflictError(
                f"URL report {report_id} is {report.status}: nothing confirmed to re-check",
                hint="re-checks are for confirmed, noticed, forwarded or removed reports",
            )
        items = [item for item in ctx.records.items(report_id) if item.confirmed]
        if len(items) > self.limits.max_media:
            ctx.leases.renew(lease_name(report_id), token, self.lease_seconds(len(items)))
        # The network first, outside any transaction; then every change in one.
        probes = {item.id: self.probe(item) for item in items}
        moved: dict[int, str] = {}
        if any(probe.outcome == "gone" for probe in probes.values()):
            moved = self._ask_the_page(report, items, probes)
        now = ctx.clock()
        gone = [item for item in items if probes[item.id].outcome == "gone"]
        up = [item for item in items if probes[item.id].outcome == "up"]
        inconclusive = [item for item in items if probes[item.id].outcome == "inconclusive"]
        back = [item for item in up if not item.online]
        with ctx.store.transaction(refresh=False) as tx:
            for item in gone:
                if item.online:
                    ctx.records.update_item(item.id, online=False, removed_at=now)
            for item in up:
                where = {"media_url": moved[item.id]} if item.id in moved else {}
                if item.online:
                    ctx.records.update_item(item.id, last_seen=now, **where)
                else:
                    ctx.records.update_item(
                        item.id,
                        online=True,
                        removed_at=None,
                        last_seen=now,
                        reappearances=item.reappearances + 1,
                        **where,
                    )
            online_left = {item.id for item in items if item.online} - {i.id for i in gone}
            online_left |= {item.id for item in back}
            attempts = report.recheck_attempts + 1
            changes: dict[str, object] = {"recheck_attempts": attempts}
            if back:
                changes["reappearances"] = report.reappearances + len(back)
            target = f"url-report:{report_id}"
            if report.status == "removed" and back:
                changes.update(
                    status="confirmed",
                    removed_at=None,
                    next_notice_at=now,
                    next_recheck_at=None,
                )
                tx.audit(
                    actor,
                    "hotline.reopen",
                    target,
                    {
                        "items": [item.id for item in back],
                        "urls": [moved.get(i.id, i.media_url) for i in back],
                    },
                )
            elif report.status == "removed":
                changes["next_recheck_at"] = self._watch_until(report.removed_at or now, now)
            elif items and not online_left:
                changes.update(
                    status="removed",
                    removed_at=now,
                    next_recheck_at=self._watch_until(now, now),
                )
                seconds = (
                    (now - report.first_notice_at).total_seconds()
                    if report.first_notice_at
                    else None
                )
                tx.audit(
                    actor,
                    "hotline.removed",
                    target,
                    {"items": len(items), "time_to_removal_seconds": seconds},
                )
            else:
                changes["next_recheck_at"] = next_recheck(ctx.settings.recheck_hours, attempts, now)
            updated = ctx.records.update(report_id, at=now, **changes)
            details: dict[str, object] = {
                "checked": len(items),
                "gone": len(gone),
                "inconclusive": len(inconclusive),
                "reappeared": len(back),
                "reasons": {str(item.id): probes[item.id].reason for item in items},
            }
            if moved:
                details["moved"] = {str(item_id): url for item_id, url in moved.items()}
            tx.audit(actor, "hotline.recheck", target, details)
        return updated

    def _ask_the_page(
        self, report: UrlReport, items: list[HotlineItem], probes: dict[int, Probe]
    ) -> dict[int, str]:
        """Re-crawl the reported page before calling any item gone: an item it still shows
        (at any media URL) is up, and moves there; without the page's word (it cannot be
        read now) the item is inconclusive. Changes ``probes``; returns the items moved."""
        sweep = sweep_page(self.crawler, self.ctx.resolver, report.url, self._hash)
        verdict = sweep.verdict
        moved: dict[int, str] = {}
        for item in items:
            probe = probes[item.id]
            if probe.outcome != "gone":
                continue
            if verdict is not None and verdict.outcome == "gone":
                probes[item.id] = Probe("gone", f"{probe.reason}; {verdict.reason}")
                continue
            found = self._find(item, sweep.media)
            if found is not None:
                seen, how = found
                probes[item.id] = Probe(
                    "up", f"{probe.reason}, but the reported page still shows it: {how}"
                )
                if seen.url != item.media_url:
                    moved[item.id] = seen.url
            elif verdict is not None:
                probes[item.id] = Probe("inconclusive", f"{probe.reason}; {verdict.reason}")
            else:
                limits = " (read up to the crawl limits)" if sweep.capped else ""
                probes[item.id] = Probe(
                    "gone", f"{probe.reason}; the reported page no longer shows it{limits}"
                )
        return moved

    def _hash(self, content: bytes) -> MediaHashes:
        return self.ctx.checks.hash_bytes(content)

    def _watch_until(self, removed_at: datetime, now: datetime) -> datetime | None:
        """The next weekly re-check of a removed report, or None once it is no longer
        watched (``hotline_watch_days`` after its removal)."""
        end = removed_at + timedelta(days=max(0, self.ctx.settings.hotline_watch_days))
        if now >= end:
            return None
        return min(now + WATCH_INTERVAL, end)

    def probe(self, item: HotlineItem) -> Probe:
        """Fetch an item's media URL again and say whether its content is still served
        (``gone`` here is to be confirmed by the reported page; see :meth:`recheck`)."""
        got = fetch_again(self.ctx.fetcher, self.ctx.resolver, item.media_url)
        if isinstance(got, Probe):
            return got
        sha256 = hashlib.sha256(got).hexdigest()
        if sha256 == item.sha256:
            return Probe("up", "the same content (SHA-256)")
        try:
            seen = Seen(item.media_url, sha256, self._hash(got))
        except AmparoError:
            seen = Seen(item.media_url, sha256)
        if self._find(item, [seen]) is not None:
            return Probe("up", "the same picture (PDQ)")
        return Probe("gone", "the URL serves other content")

    def _find(self, item: HotlineItem, media: Sequence[Seen]) -> tuple[Seen, str] | None:
        """The first medium that is the item's content, and how it was told: the same
        SHA-256, its PDQ within ``pdq_threshold`` of the item's, or still matching an entry
        the item matched (a re-encoded copy)."""
        for seen in media:
            if seen.sha256 == item.sha256:
                return seen, f"the same content (SHA-256) at {seen.url}"
        pictures = [(s, s.hashes) for s in media if s.hashes is not None and s.hashes.pdq]
        threshold = self.ctx.settings.pdq_threshold
        if item.pdq:
            for seen, hashes in pictures:
                if hashes.pdq and PdqSignal.distance(hashes.pdq, item.pdq) <= threshold:
                    return seen, f"the same picture (PDQ) at {seen.url}"
        matched = {(m.get("bank"), m.get("entry_id")) for m in item.matches}
        banks = sorted({str(bank) for bank, _ in matched if bank})
        if not banks or not pictures:
            return None
        try:
            results = self.ctx.checks.match_hashes(
                [h for _, h in pictures], banks, source="hotline"
            )
        except AmparoError:  # a bank since deleted or renamed
            return None
        for (seen, _hashes), result in zip(pictures, results, strict=True):
            if any((m.bank, m.entry_id) in matched for m in result.matches):
                return seen, f"the same picture (a bank match) at {seen.url}"
        return None


__all__ = [
    "RECHECKED_STATUSES",
    "Probe",
    "Rechecker",
    "lease_name",
    "next_recheck",
    "recheck_schedule",
]
