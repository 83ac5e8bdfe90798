"""``amparo reports``: reports to hotlines: list, build, show, submit, retract, package, standin."""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from amparo.cli.context import ID_MAX, emit_json, err_console, handle_errors, open_app
from amparo.config import LOCAL_ACTOR
from amparo.errors import InputError

app = typer.Typer(
    help="Reports to hotlines from confirmed cases: build, submit, package.\n\nExample: amparo "
    "reports build --case 12 && amparo reports submit 3",
    no_args_is_help=True,
)

ReportArg = Annotated[
    int, typer.Argument(help="Report (draft) id.", show_default=False, min=1, max=ID_MAX)
]
ActorOpt = Annotated[str, typer.Option("--actor", help="Who does this (for the audit log).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("list")
@handle_errors
def list_reports(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="queued, built, submitted or retracted.")
    ] = None,
    case: Annotated[int | None, typer.Option("--case", help="Only this case's reports.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Reports, newest first. Example: amparo reports list --status queued"""
    with open_app(ctx) as amparo:
        reports = amparo.reports.list(status=status, case_id=case, limit=limit)
        subs = {r.id: amparo.reports.submission(r.id) for r in reports}
    if as_json:
        for r in reports:
            sub = subs[r.id]
            emit_json({**r.summary(), "submission": sub.to_json() if sub else None})
        return
    table = Table("id", "case", "status", "files", "built", "submission")
    for r in reports:
        sub = subs[r.id]
        table.add_row(
            str(r.id),
            str(r.case_id),
            r.status,
            str(r.summary()["files"]),
            r.built_at.isoformat(timespec="seconds") if r.built_at else "",
            f"{sub.status} {sub.remote_id or ''}".strip() if sub else "",
        )
    Console().print(table)


@app.command("build")
@handle_errors
def build(
    ctx: typer.Context,
    report_id: Annotated[
        int | None, typer.Argument(help="Draft id.", show_default=False, min=1, max=ID_MAX)
    ] = None,
    case: Annotated[
        int | None, typer.Option("--case", help="Build the report of this case.")
    ] = None,
    actor: ActorOpt = LOCAL_ACTOR,
) -> None:
    """Build a draft from its case's confirmed items (refused while none is confirmed).
    Example: amparo reports build --case 12"""
    if (report_id is None) == (case is None):
        raise InputError("give a draft id or --case", hint="e.g. amparo reports build 3")
    with open_app(ctx) as amparo:
        if case is not None:
            record = amparo.reports.build_case(case, actor=actor)
        else:
            assert report_id is not None
            record = amparo.reports.build(report_id, actor=actor)
    emit_json(record.summary())


@app.command("show")
@handle_errors
def show(
    ctx: typer.Context,
    report_id: ReportArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="xml or json.")] = "json",
) -> None:
    """Print a built report: CyberTipline XML or the generic JSON form.
    Example: amparo reports show 3 --format xml"""
    if fmt not in ("xml", "json"):
        raise InputError(f"unknown format {fmt!r}", hint="use xml or json")
    with open_app(ctx) as amparo:
        if fmt == "xml":
            sys.stdout.write(amparo.reports.xml(report_id))
        else:
            sys.stdout.write(
                json.dumps(amparo.reports.data(report_id).to_json(), indent=2, ensure_ascii=False)
                + "\n"
            )


@app.command("submit")
@handle_errors
def submit(ctx: typer.Context, report_id: ReportArg, actor: ActorOpt = LOCAL_ACTOR) -> None:
    """Submit a built report to the CyberTipline (the test environment unless production is
    configured), or resume a submission that stopped half way.
    Example: amparo reports submit 3"""
    with open_app(ctx) as amparo:
        sub = amparo.reports.submit(report_id, actor=actor)
    err_console.print(
        f"report {report_id}: {sub.status} at {sub.base_url} ({sub.environment}), "
        f"hotline report id {sub.remote_id}",
        markup=False,
    )
    emit_json(sub.to_json())


@app.command("retract")
@handle_errors
def retract(ctx: typer.Context, report_id: ReportArg, actor: ActorOpt = LOCAL_ACTOR) -> None:
    """Withdraw a submission that was not finished. Example: amparo reports retract 3"""
    with open_app(ctx) as amparo:
        sub = amparo.reports.retract(report_id, actor=actor)
    emit_json(sub.to_json())


@app.command("package")
@handle_errors
def package(
    ctx: typer.Context,
    report_id: ReportArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="The zip file to write.")],
    plain: Annotated[
        bool, typer.Option("--plain", help="Do not encrypt the files in the package.")
    ] = False,
    actor: ActorOpt = LOCAL_ACTOR,
) -> None:
    """Write a zip with the report (XML and JSON), the files (AES-256-GCM encrypted under a
    fresh key printed once, unless --plain), a manifest of hashes and the chain-of-custody log.
    Example: amparo reports package 3 -o report-3.zip"""
    with open_app(ctx) as amparo:
        result = amparo.reports.package(report_id, output, actor=actor, plain=plain)
    err_console.print(f"wrote {result.path}: {result.files} file(s)", markup=False)
    if result.missing:
        err_console.print(
            "no preserved copy of item(s) " + ", ".join(map(str, result.missing)), markup=False
        )
    if result.key:
        err_console.print(
            f"package key (shown once, give it to the recipient separately): {result.key}",
            markup=False,
        )
    with zipfile.ZipFile(result.path) as zf:  # what `amparo package verify` shows the recipient
        manifest_sha256 = hashlib.sha256(zf.read("manifest.json")).hexdigest()
    err_console.print(f"manifest.json SHA-256 (tell the recipient): {manifest_sha256}")


@app.command("standin")
@handle_errors
def standin(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
) -> None:
    """Run a local stand-in for the CyberTipline API (in memory) to rehearse submissions:
    set cybertip_url = "http://127.0.0.1:8765". Example: amparo reports standin --port 8765"""
    import uvicorn

    from amparo.reports.standin import StandIn

    err_console.print(f"CyberTipline stand-in on http://{host}:{port} (Ctrl-C stops)", markup=False)
    uvicorn.run(StandIn().app, host=host, port=port, log_level="info")
