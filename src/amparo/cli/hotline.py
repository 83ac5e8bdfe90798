"""``amparo hotline``: report a URL, list and show URL reports, crawl, re-check and notify one
now, run the scheduler, and print the figures a hotline publishes.

Every command calls ``amparo.hotline`` (:class:`amparo.hotline.service.HotlineService`) only.
What is shown names URLs, hashes and match results, never media.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from amparo.cli.context import ID_MAX, emit_json, err_console, handle_errors, open_app
from amparo.cli.hotline_show import (
    item_json,
    notice_json,
    print_figures,
    print_report,
    report_json,
    submission_json,
    when,
)
from amparo.cli.terminal import terminal_safe
from amparo.config import LOCAL_ACTOR
from amparo.errors import AmparoError, InputError
from amparo.hotline.model import (
    STATUS_HINT,
    statuses_named,
)
from amparo.i18n import LANGUAGES, supported

app = typer.Typer(
    help="The hotline: URL reports crawled, verified, attributed and noticed to the host until "
    "the content is removed.\n\nExample: amparo hotline report https://host.example/page "
    "--language es && amparo hotline run && amparo hotline list --status notified; see "
    "docs/hotline.md",
    no_args_is_help=True,
)

IdArg = Annotated[int, typer.Argument(help="URL report id.", min=1, max=ID_MAX, show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
FORMATS = ("table", "csv", "json")


def check_country(country: str | None) -> str | None:
    if country is None:
        return None
    if len(country) != 2 or not country.isascii() or not country.isalpha():
        raise InputError(
            f"--country {country!r} is not a country code",
            hint="give the ISO 3166-1 alpha-2 code, e.g. --country MX",
        )
    return country.upper()


def check_language(language: str) -> str:
    found = supported(language)
    if found is None:
        raise InputError(
            f"--language {language!r} is not supported", hint="one of: " + ", ".join(LANGUAGES)
        )
    return found


# -- commands -----------------------------------------------------------------------------


@app.command("report")
@handle_errors
def report(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The URL to report.", show_default=False)],
    language: Annotated[
        str, typer.Option("--language", help="The report's language: es, pt_BR, en.")
    ] = "en",
    comment: Annotated[
        str | None, typer.Option("--comment", help="What the reporter said about it.")
    ] = None,
) -> None:
    """Report a URL (channel cli): it joins the URL's open report if there is one, else opens
    a new one, crawled on the scheduler's next pass.
    Example: amparo hotline report https://host.example/page --language es"""
    lang = check_language(language)
    with open_app(ctx) as amparo:
        found, joined = amparo.hotline.intake.report(
            url, channel="cli", actor=LOCAL_ACTOR, language=lang, comment=comment
        )
    what = "joined the open" if joined else "opened"
    err_console.print(
        f"{what} URL report {found.id} ({found.status}): {found.url}; crawl it now with: "
        f"amparo hotline crawl {found.id}",
        markup=False,
        soft_wrap=True,
    )
    emit_json({"id": found.id, "joined": joined, "status": found.status, "url": found.url})


@app.command("receive")
@handle_errors
def receive(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(help="The report-<id>.json a partner hotline sent.", show_default=False),
    ],
) -> None:
    """Take in a report forwarded by a partner hotline (the signed report-<id>.json it
    emailed): checked against the partner's public key in hotline_partners_file, then reported
    here like any other URL.
    Example: amparo hotline receive report-17.json"""
    try:
        if file.stat().st_size > 1024 * 1024:
            raise InputError(f"{file} is too large for a forwarded report", hint="at most 1 MiB")
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror}", hint="check the path") from None
    with open_app(ctx) as amparo:
        found, joined = amparo.hotline.intake.receive_forward(data, actor=LOCAL_ACTOR)
    what = "joined the open" if joined else "opened"
    err_console.print(
        f"{what} URL report {found.id} ({found.status}): {found.url}",
        markup=False,
        soft_wrap=True,
    )
    emit_json({"id": found.id, "joined": joined, "status": found.status, "url": found.url})


ItemArg = Annotated[
    int, typer.Argument(help="Hotline item id.", min=1, max=ID_MAX, show_default=False)
]


@app.command("waiting")
@handle_errors
def waiting(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Unknown items waiting for an analyst, oldest first (URLs and hashes; the media is seen
    shielded on /review/hotline).
    Example: amparo hotline waiting --json"""
    with open_app(ctx) as amparo:
        found = amparo.hotline.assessments.waiting(limit=limit)
    if as_json:
        for item in found:
            emit_json(item_json(item))
        return
    table = Table(title=f"{len(found)} item(s) waiting for an analyst")
    for column in ("item", "report", "first seen", "media URL", "sha256"):
        table.add_column(column)
    for item in found:
        table.add_row(
            str(item.id),
            str(item.report_id),
            when(item.first_seen),
            escape(item.media_url),
            item.sha256[:16] + "…",
        )
    Console().print(table)


@app.command("assess")
@handle_errors
def assess(
    ctx: typer.Context,
    item_id: ItemArg,
    assessment: Annotated[
        str,
        typer.Argument(help="baseline, national or not_illegal (ICCAM).", show_default=False),
    ],
    jurisdiction: Annotated[
        str | None,
        typer.Option("--jurisdiction", help="ISO 3166 code whose law a national one names."),
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="For the record.")] = None,
    analyst: Annotated[
        str | None, typer.Option("--analyst", help="Who assessed it (audit actor local:NAME).")
    ] = None,
) -> None:
    """Record an analyst's classification of an unknown item; the report moves on
    (confirmed: noticed; every item not illegal: closed).
    Example: amparo hotline assess 12 national --jurisdiction MX --analyst rita"""
    actor = f"{LOCAL_ACTOR}:{analyst}" if analyst else LOCAL_ACTOR
    with open_app(ctx) as amparo:
        item = amparo.hotline.assessments.assess(
            item_id, assessment, actor=actor, jurisdiction=jurisdiction, note=note
        )
    emit_json(item_json(item))


@app.command("propose")
@handle_errors
def propose(
    ctx: typer.Context,
    item_id: ItemArg,
    bank: Annotated[str, typer.Option("--bank", help="The outgoing bank.", show_default=False)],
    classification: Annotated[
        str,
        typer.Option(
            "--classification", help="A1, A2, B1 or B2: what the entries carry.", show_default=False
        ),
    ],
    note: Annotated[str | None, typer.Option("--note", help="For the curator.")] = None,
) -> None:
    """Propose an item assessed illegal to an outgoing bank; published only once a curator
    approves (`amparo bank proposals`).
    Example: amparo hotline propose 12 --bank shared --classification A2"""
    with open_app(ctx) as amparo:
        proposal = amparo.hotline.assessments.propose(
            item_id, bank, actor=LOCAL_ACTOR, note=note, classification=classification
        )
    emit_json(proposal.to_json())


@app.command("list")
@handle_errors
def list_reports(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="A status, or open: " + STATUS_HINT)
    ] = None,
    country: Annotated[
        str | None, typer.Option("--country", help="Hosting country (ISO code, e.g. MX).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="Most shown.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List URL reports, newest first. Example: amparo hotline list --status open --country MX"""
    statuses = statuses_named(status)
    code = check_country(country)
    with open_app(ctx) as amparo:
        records = amparo.hotline.records
        reports = records.list(statuses=statuses, country=code, limit=limit)
        total = records.count(statuses=statuses, country=code)
    if as_json:
        for r in reports:
            emit_json(report_json(r))
        return
    table = Table("id", "status", "host", "country", "provider", "notices", "reported", "url")
    table.columns[-1].overflow = "fold"  # a URL is shown whole, wrapped
    for r in reports:
        table.add_row(
            str(r.id),
            r.status,
            escape(r.host),
            r.country or "-",
            escape(r.provider or "-"),
            str(r.notices_sent),
            when(r.created_at),
            escape(r.url),
        )
    Console().print(table)
    if total > len(reports):
        err_console.print(f"showing {len(reports)} of {total}; --limit shows more", markup=False)


@app.command("show")
@handle_errors
def show(ctx: typer.Context, report_id: IdArg, as_json: JsonOpt = False) -> None:
    """Show a URL report: its handling, attribution, the items found (hashes, match,
    assessment; never media) and the notices sent. Example: amparo hotline show 12"""
    with open_app(ctx) as amparo:
        records = amparo.hotline.records
        found = records.get(report_id)
        items = records.items(report_id)
        notices = records.notices(report_id)
        submissions = records.submissions(report_id)
    if as_json:
        emit_json(
            {
                **report_json(found),
                "submissions": [submission_json(s) for s in submissions],
                "items": [item_json(i) for i in items],
                "notices": [notice_json(n) for n in notices],
            }
        )
        return
    print_report(found, items, notices, submissions)


@app.command("crawl")
@handle_errors
def crawl(ctx: typer.Context, report_id: IdArg) -> None:
    """Crawl a reported page now: fetch it, hash and match what it shows, attribute the host.
    Example: amparo hotline crawl 12"""
    with open_app(ctx) as amparo:
        found = amparo.hotline.verifier.crawl(report_id, actor=LOCAL_ACTOR)
    err_console.print(f"URL report {found.id}: {found.status}", markup=False)
    emit_json(report_json(found))


@app.command("recheck")
@handle_errors
def recheck(ctx: typer.Context, report_id: IdArg) -> None:
    """Re-check now whether a report's content is still online. Example: amparo hotline
    recheck 12"""
    with open_app(ctx) as amparo:
        found = amparo.hotline.rechecker.recheck(report_id, actor=LOCAL_ACTOR)
    err_console.print(f"URL report {found.id}: {found.status}", markup=False)
    emit_json(report_json(found))


@app.command("notify")
@handle_errors
def notify(
    ctx: typer.Context,
    report_id: IdArg,
    force: Annotated[
        bool, typer.Option("--force", help="Send one now even if none is due yet.")
    ] = False,
) -> None:
    """Send a report's due notice (or forward) now. Example: amparo hotline notify 12 --force"""
    with open_app(ctx) as amparo:
        notices = amparo.hotline.notifier.notify(report_id, actor=LOCAL_ACTOR, force=force)
    if not notices:
        err_console.print(
            f"URL report {report_id}: no notice due (--force sends one now)", markup=False
        )
    for n in notices:
        result = "sent" if n.ok else f"failed: {n.error or '?'}"
        line = f"{n.kind} by {n.channel} to {n.recipient}: {result}"
        err_console.print(terminal_safe(line), markup=False)
        emit_json(notice_json(n))


def _pass_json(result: object) -> object:
    if result is None or isinstance(result, (int, float, str, bool, dict, list)):
        return result
    data = getattr(result, "__dict__", None)
    return dict(data) if isinstance(data, dict) else str(result)


@app.command("run")
@handle_errors
def run(
    ctx: typer.Context,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", help="Keep running a pass every hotline_poll_seconds until Ctrl-C."
        ),
    ] = False,
) -> None:
    """Run the hotline scheduler: crawls, notices and re-checks due now (one pass, or with
    --follow one every hotline_poll_seconds, as amparo serve does). Example: amparo hotline
    run --follow"""
    with open_app(ctx) as amparo:
        runner = amparo.hotline.runner
        emit_json(_pass_json(runner.run_once()))
        if not follow:
            return
        stop = threading.Event()

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        with contextlib.suppress(ValueError):  # not the main thread: Ctrl-C still works
            signal.signal(signal.SIGTERM, on_signal)
        poll = max(0.05, float(amparo.settings.hotline_poll_seconds))
        err_console.print(f"running a pass every {poll:g} s; Ctrl-C stops", markup=False)
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(poll):
                try:
                    emit_json(_pass_json(runner.run_once()))
                except AmparoError as exc:
                    err_console.print(terminal_safe(f"the pass failed: {exc}"), markup=False)
        err_console.print("stopped", markup=False)


@app.command("stats")
@handle_errors
def stats(
    ctx: typer.Context,
    output: Annotated[
        str, typer.Option("--format", help="table, csv or json.", show_default=True)
    ] = "table",
) -> None:
    """The figures a hotline publishes: reports, open URLs, notices, removal times
    (p50/p90/p99 hours) and shares removed within 1, 3 and 7 days, overall, per provider
    and per country. Example: amparo hotline stats --format csv > figures.csv"""
    if output not in FORMATS:
        raise InputError(f"--format {output!r} is not known", hint="one of: " + ", ".join(FORMATS))
    with open_app(ctx) as amparo:
        figures = amparo.hotline.figures.figures()
    if output == "json":
        emit_json(figures.to_json())
    elif output == "csv":
        typer.echo(figures.to_csv(), nl=False)
    else:
        print_figures(figures)
