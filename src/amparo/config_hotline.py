"""The hotline pipeline's rows of the settings table (:class:`amparo.config.Settings`
inherits them; kept here so the table's module stays readable), and :func:`setting`, the
declaration of one row.

Every row is documented in docs/configuration.md like the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


def setting(default: T, description: str) -> T:
    """One row of :class:`~amparo.config.Settings`: its default, and the description the docs
    test checks against docs/configuration.md (read back through ``SETTING_DOCS``)."""
    return field(default=default, metadata={"doc": description})


@dataclass(frozen=True)
class HotlineSettings:
    """URL reports, the verification crawl, hosting attribution, notices and re-checks."""

    hotline_in_serve: bool = setting(
        True, "Run the hotline scheduler (crawls, notices, re-checks) inside `amparo serve`."
    )
    hotline_poll_seconds: float = setting(60.0, "How often the hotline scheduler looks for work.")
    hotline_name: str = setting("Amparo hotline", "The hotline's name in notices and pages.")
    hotline_countries: str = setting(
        "",
        "ISO 3166 codes (comma-separated) where this hotline notifies hosts itself; content "
        "hosted elsewhere goes to that country's partner hotline. Empty: notify every host.",
    )
    hotline_partners_file: str = setting(
        "",
        "JSON file: country code -> partner hotline {name, email or url, language} that "
        "receives forwarded reports.",
    )
    hotline_contacts_file: str = setting(
        "",
        'JSON file of abuse-contact overrides: {"asn": {"64500": "abuse@…"}, '
        '"domain": {"example.net": "abuse@…"}} (they win over RDAP).',
    )
    hotline_jurisdictions_file: str = setting(
        "",
        "JSON file adding or replacing jurisdictions (code -> name, laws) for `national` "
        "assessments; the built-in list covers Mexico and other Latin American countries.",
    )
    hotline_mmdb_files: str = setting(
        "",
        "MaxMind-format databases (comma-separated .mmdb: GeoLite2/DB-IP/IPinfo country and "
        "ASN) that map addresses to network, provider and country.",
    )
    hotline_rdap_url: str = setting(
        "",
        "RDAP service queried for abuse contacts (e.g. https://rdap.org); empty: offline, "
        "contacts come from overrides only.",
    )
    hotline_rdap_cache_days: int = setting(7, "How long an RDAP answer is reused.")
    hotline_cdn_asns: str = setting(
        "13335,209242,54113,20940,16625,60068,22822,15133",
        "Networks (ASNs, comma-separated) flagged as CDNs: the CDN is notified and asked for "
        "the origin host.",
    )
    hotline_crawl_depth: int = setting(
        1, "Links followed from a reported page to same-host pages (0: the page only)."
    )
    hotline_crawl_max_pages: int = setting(10, "Most pages fetched for one report.")
    hotline_crawl_max_media: int = setting(50, "Most media URLs fetched and hashed per report.")
    hotline_crawl_max_links: int = setting(
        5000, "Most links and media references read from one page (the rest are ignored)."
    )
    hotline_page_max_bytes: int = setting(5 * 1024 * 1024, "Largest HTML page the crawl reads.")
    hotline_crawl_attempts: int = setting(
        5, "Tries to fetch an unreachable reported page (with backoff) before closing it."
    )
    hotline_unknown_retention_days: int = setting(
        90, "Evidence retention of unknown media preserved for an analyst."
    )
    hotline_not_illegal_retention_days: int = setting(
        1, "Retention left to media an analyst assessed not illegal."
    )
    notice_repeat_hours: float = setting(
        24.0, "Hours between repeated notices while the content is still up."
    )
    notice_escalate_after: int = setting(
        3,
        "Repeats after which the notice escalates (marked urgent, copied to the escalation "
        "contact).",
    )
    notice_escalation_email: str = setting(
        "", "Copied on escalated notices (e.g. the hotline's police liaison)."
    )
    notice_from: str = setting(
        "", "Sender address of notices; empty: notices by email are not sent."
    )
    notice_webhooks_file: str = setting(
        "",
        "JSON file: ASN or domain -> webhook URL that receives notices as JSON instead of email.",
    )
    smtp_url: str = setting(
        "smtp://127.0.0.1:25",
        "SMTP server for notices: smtp://host:port (STARTTLS when offered) or smtps://host:port.",
    )
    smtp_username: str = setting("", "SMTP user name; empty: no authentication.")
    smtp_password: str = setting(
        "", "SMTP password by reference: env:AMPARO_SECRET_NAME or file:PATH (never inline)."
    )
    recheck_hours: str = setting(
        "6,12,24,24,48,72",
        "Hours between removal re-checks (the last repeats), from the first notice on.",
    )
    hotline_watch_days: int = setting(
        30, "Days a removed URL is still re-checked (weekly) for the content's reappearance."
    )
    report_rate_limit: str = setting(
        "5/600",
        "Reports one client may send on /report: COUNT/SECONDS (clients are told apart by "
        "address; only a hash of it is kept, in memory).",
    )
    # -- notices and forwards (hotline.notices) ---------------------------------------------
    notice_reply_to: str = setting(
        "", "Reply-To address of notices and forwards (the hotline's desk); empty: notice_from."
    )
    smtp_timeout_seconds: float = setting(
        30.0, "Seconds each step of an SMTP conversation may take before the notice fails."
    )
    # -- verification crawl bounds (hotline.verify) -----------------------------------------
    hotline_preserve_max_bytes: int = setting(
        200 * 1024 * 1024,
        "Most bytes of unknown media one report may preserve as evidence; past it unknown "
        "media are still hashed and recorded, not preserved (0: none preserved).",
    )
