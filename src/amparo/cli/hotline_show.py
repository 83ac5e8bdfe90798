"""What ``amparo hotline`` prints: a URL report with its submissions, items and notices
(JSON or Rich tables), and the figures a hotline publishes. Names URLs, hashes and match
results, never media."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from amparo.cli.terminal import terminal_safe
from amparo.hotline.figures import QUANTILES, WITHIN_DAYS, GroupFigures, HotlineFigures
from amparo.hotline.model import HotlineItem, Notice, Submission, UrlReport


def _shown(text: str) -> str:
    """Text from outside (a reported URL, a provider's registry data, a mail server's error)
    as it may go into a Rich table: markup escaped, control characters as ``\\xNN``."""
    return escape(terminal_safe(text))


def when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def report_json(report: UrlReport) -> dict[str, Any]:
    return {
        "id": report.id,
        "url": report.url,
        "host": report.host,
        "status": report.status,
        "created_at": report.created_at,
        "updated_at": report.updated_at,
        "submissions": report.submissions,
        "language": report.language,
        "crawled_at": report.crawled_at,
        "crawl_error": report.crawl_error,
        "crawl_attempts": report.crawl_attempts,
        "next_crawl_at": report.next_crawl_at,
        "attribution": report.attribution.to_json() if report.attribution else None,
        "first_notice_at": report.first_notice_at,
        "last_notice_at": report.last_notice_at,
        "notices_sent": report.notices_sent,
        "next_notice_at": report.next_notice_at,
        "escalated": report.escalated,
        "next_recheck_at": report.next_recheck_at,
        "recheck_attempts": report.recheck_attempts,
        "removed_at": report.removed_at,
        "reappearances": report.reappearances,
        "media_urls": list(report.media_urls),
    }


def item_json(item: HotlineItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "media_url": item.media_url,
        "sha256": item.sha256,
        "md5": item.md5,
        "pdq": item.pdq,
        "size": item.size,
        "mime": item.mime,
        "media_kind": item.media_kind,
        "status": item.status,
        "matches": [dict(m) for m in item.matches],
        "evidence_id": item.evidence_id,
        "assessment": item.assessment,
        "jurisdiction": item.jurisdiction,
        "assessed_by": item.assessed_by,
        "assessed_at": item.assessed_at,
        "online": item.online,
        "first_seen": item.first_seen,
        "last_seen": item.last_seen,
        "removed_at": item.removed_at,
        "reappearances": item.reappearances,
    }


def notice_json(notice: Notice) -> dict[str, Any]:
    return {
        "id": notice.id,
        "kind": notice.kind,
        "channel": notice.channel,
        "recipient": notice.recipient,
        "at": notice.at,
        "language": notice.language,
        "ok": notice.ok,
        "error": notice.error,
        "detail": notice.detail,
    }


def submission_json(s: Submission) -> dict[str, Any]:
    # Who reported is kept for the hotline's staff; the contact stays out of listings.
    return {
        "id": s.id,
        "at": s.at,
        "channel": s.channel,
        "reporter": s.reporter,
        "language": s.language,
        "comment": s.comment,
    }


def print_report(
    r: UrlReport, items: list[HotlineItem], notices: list[Notice], submissions: list[Submission]
) -> None:
    out = Console()
    facts = Table.grid(padding=(0, 2))
    facts.add_row("report", f"{r.id} ({r.status})")
    facts.add_row("url", _shown(r.url))
    facts.add_row("reported", f"{when(r.created_at)}, {r.submissions} submission(s)")
    facts.add_row(
        "crawled", when(r.crawled_at) + (f" ({_shown(r.crawl_error)})" if r.crawl_error else "")
    )
    a = r.attribution
    if a is not None:
        network = f"AS{a.asn} " if a.asn else ""
        facts.add_row(
            "hosted",
            _shown(f"{network}{a.provider or '?'} in {a.country or '?'}")
            + (" (CDN)" if a.cdn else ""),
        )
        facts.add_row("addresses", _shown(", ".join(a.addresses) or "-"))
        contact = a.abuse_email or "-"
        facts.add_row(
            "abuse contact", _shown(contact + (f" ({a.abuse_source})" if a.abuse_source else ""))
        )
        if a.error:
            facts.add_row("attribution error", _shown(a.error))
    facts.add_row(
        "notices",
        f"{r.notices_sent} sent, first {when(r.first_notice_at)}, next {when(r.next_notice_at)}"
        + (" (escalated)" if r.escalated else ""),
    )
    facts.add_row("next re-check", when(r.next_recheck_at))
    facts.add_row(
        "removed",
        when(r.removed_at) + (f", {r.reappearances} reappearance(s)" if r.reappearances else ""),
    )
    out.print(facts)
    if items:
        table = Table("item", "status", "assessment", "online", "sha256", "pdq", "media url",
                      title="items")  # fmt: skip
        for column in table.columns[4:]:
            column.overflow = "fold"  # hashes and URLs whole, wrapped
        for i in items:
            assessment = i.assessment or "-"
            if i.jurisdiction:
                assessment += f" ({i.jurisdiction})"
            table.add_row(
                str(i.id),
                i.status,
                assessment,
                "yes" if i.online else "no",
                i.sha256,
                i.pdq or "-",
                _shown(i.media_url),
            )
        out.print(table)
    if notices:
        table = Table("notice", "kind", "channel", "recipient", "at", "language", "result",
                      title="notices")  # fmt: skip
        for n in notices:
            table.add_row(
                str(n.id),
                n.kind,
                n.channel,
                _shown(n.recipient),
                when(n.at),
                n.language,
                "sent" if n.ok else _shown(f"failed: {n.error or '?'}"),
            )
        out.print(table)
    if submissions:
        shown = ", ".join(f"{s.channel} {when(s.at)}" for s in submissions[:10])
        out.print(f"submissions: {_shown(shown)}" + (" ..." if len(submissions) > 10 else ""))


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _figures_table(title: str, groups: list[GroupFigures]) -> Table:
    table = Table(
        "name",
        "reports",
        "open",
        "notices",
        "removed",
        *(f"p{q} h" for q in QUANTILES),
        *(f"≤{d}d" for d in WITHIN_DAYS),
        "reappeared",
        title=title,
    )
    for g in groups:
        table.add_row(
            _shown(g.name),
            str(g.reports),
            str(g.open_urls),
            str(g.notices_sent),
            str(g.removed),
            *(_hours(g.removal_hours.get(f"p{q}")) for q in QUANTILES),
            *(_share(g.removed_within.get(f"{d}d")) for d in WITHIN_DAYS),
            str(g.reappearances),
        )
    return table


def print_figures(figures: HotlineFigures) -> None:
    out = Console()
    out.print(_figures_table("overall", [figures.overall]))
    statuses = ", ".join(f"{s} {n}" for s, n in figures.by_status.items() if n)
    out.print(f"by status: {statuses or '-'}")
    out.print(_figures_table("per provider", list(figures.by_provider)))
    out.print(_figures_table("per country", list(figures.by_country)))
    out.print(
        "removal after the first notice: "
        + ", ".join(f"{label} {n}" for _key, label, n in figures.removal_buckets)
    )
