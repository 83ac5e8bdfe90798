"""The hotline's vocabulary: URL reports, the media found behind them, their assessment,
where they are hosted, the notices sent, and their removal.

A *URL report* is one normalised URL (one row however many people reported it); each
*submission* is one person's or partner's report of it. The crawl finds *items*: media the page
shows or links, each hashed and matched. A known item (it matched a bank) is ``verified``; an
unknown one waits for an analyst (``unknown`` -> ``assessed``). Content confirmed illegal is
attributed to a host and country, noticed to the host's abuse contact (or forwarded to the
partner hotline of the hosting country) until re-checks find it gone.

Plain dataclasses, no storage: :mod:`amparo.store.hotline` builds these from its rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from amparo.errors import InputError

REPORT_STATUS_DOCS: dict[str, str] = {
    "new": "reported, not crawled yet",
    "unreachable": "the page could not be fetched (retried with backoff)",
    "assessment": "crawled; unknown media waits for an analyst",
    "confirmed": "known or assessed-illegal media found; its notice or forward is due",
    "notified": "a notice went to the host (repeated until removal)",
    "forwarded": "forwarded to the partner hotline of the hosting country",
    "removed": "every confirmed item is gone (watched a while for reappearance)",
    "closed": "nothing illegal found (no media, or every item assessed not illegal)",
}
"""A URL report's life: each status and what it means."""
REPORT_STATUSES = tuple(REPORT_STATUS_DOCS)
OPEN_REPORT_STATUSES = ("new", "unreachable", "assessment", "confirmed", "notified", "forwarded")
"""Statuses a new submission of the same URL joins (any other starts the report again)."""
STATUS_HINT = "one of: open (every status still handled), " + ", ".join(REPORT_STATUSES)


def statuses_named(status: str | None) -> list[str] | None:
    """The statuses a filter names: one status, ``open`` for every status still handled, or
    None (every report). InputError for anything else."""
    if status is None:
        return None
    if status == "open":
        return list(OPEN_REPORT_STATUSES)
    if status not in REPORT_STATUSES:
        raise InputError(f"{status!r} is not a report status", hint=STATUS_HINT)
    return [status]


ITEM_STATUSES = ("verified", "unknown", "assessed")
"""``verified``: matched a bank entry; ``unknown``: waits for an analyst; ``assessed``: an
analyst classified it."""
ASSESSMENTS = ("baseline", "national", "not_illegal")
"""ICCAM's classification: ``baseline`` (illegal internationally, INTERPOL's baseline),
``national`` (illegal under a named jurisdiction's law), ``not_illegal``."""
CONFIRMED_ASSESSMENTS = ("baseline", "national")

NOTICE_KINDS = ("notice", "repeat", "escalation", "forward")
NOTICE_CHANNELS = ("email", "webhook", "export")
SUBMISSION_CHANNELS = ("web", "api", "cli")


@dataclass(frozen=True)
class Submission:
    """One report of a URL: who (a key name for partners; None for the public page), through
    which channel, in which language, with an optional contact and comment."""

    id: int
    report_id: int
    at: datetime
    channel: str
    reporter: str | None = None
    language: str = "en"
    contact: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class Attribution:
    """Where a host's content lives: its addresses and, per address, the network, provider
    and country the operator's .mmdb databases name (and which database file and build said
    so), the abuse contact (RDAP or an override), and whether the provider is a CDN."""

    host: str
    addresses: tuple[str, ...] = ()
    asn: int | None = None
    provider: str | None = None
    country: str | None = None
    """ISO 3166-1 alpha-2, upper case."""
    abuse_email: str | None = None
    abuse_source: str | None = None
    """``rdap``, ``override:asn``, ``override:domain`` or None when none was found."""
    cdn: bool = False
    databases: tuple[dict[str, Any], ...] = ()
    """``{"file": name, "build": ISO date, "type": database type}`` per database consulted."""
    resolved_at: datetime | None = None
    error: str | None = None
    """Why resolution failed (the host did not resolve), if it did."""

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "addresses": list(self.addresses),
            "asn": self.asn,
            "provider": self.provider,
            "country": self.country,
            "abuse_email": self.abuse_email,
            "abuse_source": self.abuse_source,
            "cdn": self.cdn,
            "databases": [dict(d) for d in self.databases],
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attribution:
        resolved = data.get("resolved_at")
        return cls(
            host=str(data.get("host", "")),
            addresses=tuple(data.get("addresses") or ()),
            asn=data.get("asn"),
            provider=data.get("provider"),
            country=data.get("country"),
            abuse_email=data.get("abuse_email"),
            abuse_source=data.get("abuse_source"),
            cdn=bool(data.get("cdn", False)),
            databases=tuple(data.get("databases") or ()),
            resolved_at=datetime.fromisoformat(resolved) if resolved else None,
            error=data.get("error"),
        )


@dataclass(frozen=True)
class HotlineItem:
    """One medium found behind a reported URL (one media URL), hashed and matched."""

    id: int
    report_id: int
    media_url: str
    sha256: str
    status: str
    """One of ``ITEM_STATUSES``."""
    first_seen: datetime
    last_seen: datetime
    md5: str | None = None
    pdq: str | None = None
    size: int | None = None
    mime: str | None = None
    media_kind: str | None = None
    matches: tuple[dict[str, Any], ...] = ()
    """``Match.to_json()`` of each bank entry it matched (verified items)."""
    evidence_id: int | None = None
    """The preserved copy (unknown items, for the analyst)."""
    assessment: str | None = None
    """One of ``ASSESSMENTS`` once assessed; ``baseline`` for a verified item."""
    jurisdiction: str | None = None
    """ISO code of the law a ``national`` assessment names."""
    assessed_by: str | None = None
    assessed_at: datetime | None = None
    note: str | None = None
    online: bool = True
    """Whether the last check found it still served."""
    removed_at: datetime | None = None
    reappearances: int = 0

    @property
    def confirmed(self) -> bool:
        return self.status == "verified" or self.assessment in CONFIRMED_ASSESSMENTS


@dataclass(frozen=True)
class Notice:
    """One notice, repeat, escalation or forward sent (or tried) for a report."""

    id: int
    report_id: int
    kind: str
    """One of ``NOTICE_KINDS``."""
    channel: str
    """One of ``NOTICE_CHANNELS``."""
    recipient: str
    at: datetime
    language: str
    ok: bool
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    """What was sent (URLs, hashes, legal basis; never media), the answer."""


@dataclass(frozen=True)
class UrlReport:
    """One reported URL and where its handling stands."""

    id: int
    url: str
    """Normalised (see :func:`amparo.hotline.urls.normalise`)."""
    host: str
    status: str
    """One of ``REPORT_STATUSES``."""
    created_at: datetime
    updated_at: datetime
    submissions: int = 1
    language: str = "en"
    """The first submission's language (the notice's language is the host country's)."""
    crawled_at: datetime | None = None
    crawl_error: str | None = None
    crawl_attempts: int = 0
    next_crawl_at: datetime | None = None
    attribution: Attribution | None = None
    first_notice_at: datetime | None = None
    last_notice_at: datetime | None = None
    notices_sent: int = 0
    next_notice_at: datetime | None = None
    escalated: bool = False
    next_recheck_at: datetime | None = None
    recheck_attempts: int = 0
    removed_at: datetime | None = None
    reappearances: int = 0
    media_urls: tuple[str, ...] = ()
    """The media URLs the crawl extracted (the page's HTML itself is not kept)."""

    @property
    def country(self) -> str | None:
        return self.attribution.country if self.attribution else None

    @property
    def provider(self) -> str | None:
        return self.attribution.provider if self.attribution else None

    @property
    def time_to_removal_seconds(self) -> float | None:
        if self.removed_at is None or self.first_notice_at is None:
            return None
        return max(0.0, (self.removed_at - self.first_notice_at).total_seconds())
