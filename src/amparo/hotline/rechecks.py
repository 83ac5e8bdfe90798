"""Removal re-checks: is the content still served, gone, or back?

A noticed (or forwarded) report is re-checked on the ``recheck_hours`` schedule (hours
between successive re-checks; the last value repeats). Each confirmed item's media URL is
fetched again through the safe fetcher, and the answer read as:

* **gone**: 404 or 410; the host no longer resolves, or now resolves only to an address the
  address policy refuses (a sinkholed domain); or the URL serves other content (another
  SHA-256, and its PDQ is neither within ``pdq_threshold`` of the item's nor a match of the
  bank entries the item matched);
* **still up**: the same SHA-256, or a perceptual match as above (a re-encoded copy);
* **inconclusive**: anything else (timeout, refused connection, 5xx, a body over the size
  limit, a temporary resolver failure). Nothing changes; the next re-check tries again.

When every confirmed item is gone the report is ``removed`` (``removed_at`` now: the time to
removal counts from the first notice) and is still re-checked weekly for
``hotline_watch_days``. If a removed report's content is served again, the report reopens
(``confirmed``, noticed again on the notifier's next pass) and the reappearance is counted on
the item and the report.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from amparo.config import SYSTEM_ACTOR
from amparo.errors import AmparoError, ConfigError, ConflictError, FetchError, UrlRefusedError
from amparo.hotline.context import HotlineContext
from amparo.hotline.model import HotlineItem, UrlReport
from amparo.hotline.notifying import Notifier
from amparo.signals.pdq import PdqSignal

log = logging.getLogger(__name__)

RECHECKED_STATUSES = ("notified", "forwarded", "removed")
WATCH_INTERVAL = timedelta(days=7)
"""How often a removed report is re-checked for reappearance while it is watched."""

Outcome = Literal["up", "gone", "inconclusive"]

# amparo.fetch words a refused status as "<host> answered <status> for the URL".
_ANSWERED = re.compile(r"\banswered (\d{3})\b")
_GONE_STATUSES = frozenset({404, 410})
# getaddrinfo's EAI_AGAIN: the resolver could not answer now, which says nothing of the host.
_TEMPORARY_DNS = re.compile(r"temporary failure|try again|\[Errno -3\]", re.IGNORECASE)


@dataclass(frozen=True)
class Probe:
    """What one re-fetch of an item's media URL found, and why."""

    outcome: Outcome
    reason: str


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


def status_of(error: FetchError) -> int | None:
    """The HTTP status a fetch was refused with, when it was refused for its status."""
    found = _ANSWERED.search(error.message)
    return int(found.group(1)) if found else None


class Rechecker:
    """Re-checks noticed reports (see the module's docstring)."""

    def __init__(self, ctx: HotlineContext, notifier: Notifier) -> None:
        self.ctx = ctx
        self.notifier = notifier

    def recheck_due(self, now: datetime | None = None, *, limit: int = 50) -> int:
        """Re-check the reports whose re-check is due; how many."""
        now = now or self.ctx.clock()
        done = 0
        for report_id in self.ctx.records.due("next_recheck_at", RECHECKED_STATUSES, now, limit):
            try:
                self.recheck(report_id)
            except Exception:
                log.exception("re-checking URL report %d failed; the others go on", report_id)
            else:
                done += 1
        return done

    def recheck(self, report_id: int, *, actor: str = SYSTEM_ACTOR) -> UrlReport:
        """Re-check one report now: items gone are marked removed, the report removed when
        every confirmed item is; content back online reopens it."""
        ctx = self.ctx
        report = ctx.records.get(report_id)
        if report.status not in (*RECHECKED_STATUSES, "confirmed"):
            raise ConflictError(
                f"URL report {report_id} is {report.status}: nothing confirmed to re-check",
                hint="re-checks are for confirmed, noticed, forwarded or removed reports",
            )
        items = [item for item in ctx.records.items(report_id) if item.confirmed]
        # The network first, outside any transaction; then every change in one.
        probes = [(item, self.probe(item)) for item in items]
        now = ctx.clock()
        gone = [item for item, probe in probes if probe.outcome == "gone"]
        up = [item for item, probe in probes if probe.outcome == "up"]
        inconclusive = [item for item, probe in probes if probe.outcome == "inconclusive"]
        back = [item for item in up if not item.online]
        with ctx.store.transaction(refresh=False) as tx:
            for item in gone:
                if item.online:
                    ctx.records.update_item(item.id, online=False, removed_at=now)
            for item in up:
                if item.online:
                    ctx.records.update_item(item.id, last_seen=now)
                else:
                    ctx.records.update_item(
                        item.id,
                        online=True,
                        removed_at=None,
                        last_seen=now,
                        reappearances=item.reappearances + 1,
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
                    {"items": [item.id for item in back], "urls": [i.media_url for i in back]},
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
            tx.audit(
                actor,
                "hotline.recheck",
                target,
                {
                    "checked": len(items),
                    "gone": len(gone),
                    "inconclusive": len(inconclusive),
                    "reappeared": len(back),
                    "reasons": {str(item.id): probe.reason for item, probe in probes},
                },
            )
        return updated

    def _watch_until(self, removed_at: datetime, now: datetime) -> datetime | None:
        """The next weekly re-check of a removed report, or None once it is no longer
        watched (``hotline_watch_days`` after its removal)."""
        end = removed_at + timedelta(days=max(0, self.ctx.settings.hotline_watch_days))
        if now >= end:
            return None
        return min(now + WATCH_INTERVAL, end)

    def probe(self, item: HotlineItem) -> Probe:
        """Fetch an item's media URL again and say whether its content is still served."""
        fetcher = self.ctx.fetcher
        try:
            _scheme, host, port = fetcher.policy.parse(item.media_url)
        except UrlRefusedError as exc:
            return Probe("inconclusive", exc.message)
        if not _is_literal(host):
            try:
                if not self.ctx.resolver(host, port):
                    return Probe("gone", f"{host} has no addresses")
            except (FetchError, OSError, UnicodeError) as exc:
                if _TEMPORARY_DNS.search(str(exc)):
                    return Probe("inconclusive", f"looking {host} up failed: {exc}")
                return Probe("gone", f"{host} does not resolve: {exc}")
        try:
            fetched = fetcher.fetch(item.media_url)
        except UrlRefusedError as exc:
            return Probe("gone", f"the host now points elsewhere: {exc.message}")
        except FetchError as exc:
            status = status_of(exc)
            if status in _GONE_STATUSES:
                return Probe("gone", f"HTTP {status}")
            return Probe("inconclusive", exc.message)
        except AmparoError as exc:
            return Probe("inconclusive", exc.message)
        if hashlib.sha256(fetched.content).hexdigest() == item.sha256:
            return Probe("up", "the same content (SHA-256)")
        if self._looks_the_same(item, fetched.content):
            return Probe("up", "the same picture (PDQ)")
        return Probe("gone", "the URL serves other content")

    def _looks_the_same(self, item: HotlineItem, content: bytes) -> bool:
        """Whether ``content`` is a perceptual copy of the item: its PDQ within
        ``pdq_threshold`` of the item's, or still matching an entry the item matched."""
        checks = self.ctx.checks
        hashes = checks.hash_bytes(content)
        if hashes.pdq is None:
            return False
        if item.pdq and PdqSignal.distance(hashes.pdq, item.pdq) <= self.ctx.settings.pdq_threshold:
            return True
        matched = {(m.get("bank"), m.get("entry_id")) for m in item.matches}
        banks = sorted({str(bank) for bank, _ in matched if bank})
        if not banks:
            return False
        try:
            result = checks.match_hashes([hashes], banks)[0]
        except AmparoError:  # a bank since deleted or renamed
            return False
        return any((m.bank, m.entry_id) in matched for m in result.matches)


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


__all__ = ["RECHECKED_STATUSES", "Probe", "Rechecker", "next_recheck", "recheck_schedule"]
