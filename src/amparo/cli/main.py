"""The ``amparo`` command: builds the app from settings and hands work to the core."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from amparo import __version__
from amparo.cli import (
    auditcmd,
    bank,
    cases,
    evidence,
    exchange,
    feeds,
    hashcmd,
    hotline,
    indexcmd,
    keys,
    match,
    package,
    reports,
    rules,
    scan,
    serve,
    webhooks,
)
from amparo.cli.context import EXIT_ERROR, GlobalOptions, fail

app = typer.Typer(
    name="amparo",
    help=(
        "Find known child sexual abuse material by hash matching.\n\n"
        "Example: amparo bank create known && amparo bank import known list.csv && "
        "amparo scan /mnt/evidence --report report.jsonl"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"amparo {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", envvar="AMPARO_HOME", help="Data directory (./amparo-data)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="AMPARO_DATABASE_URL",
            help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default: SQLite).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", envvar="AMPARO_CONFIG", help="TOML config file."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    opts = GlobalOptions()
    opts.home, opts.database_url, opts.config = home, database_url, config
    ctx.obj = opts
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


app.command("hash", help=hashcmd.HELP, no_args_is_help=True)(hashcmd.hash_command)
app.command("match", help=match.HELP, no_args_is_help=True)(match.match_command)
app.command("scan", help=scan.HELP, no_args_is_help=True)(scan.scan_command)
app.add_typer(bank.app, name="bank")
app.command("serve", help=serve.HELP)(serve.serve_command)
app.add_typer(keys.app, name="keys")
app.add_typer(indexcmd.app, name="index")
app.add_typer(rules.app, name="rules")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(cases.app, name="cases")
app.add_typer(evidence.app, name="evidence")
app.add_typer(reports.app, name="reports")
app.add_typer(package.app, name="package")
app.add_typer(auditcmd.app, name="audit")
app.add_typer(exchange.app, name="exchange")
app.add_typer(feeds.app, name="feeds")
app.add_typer(hotline.app, name="hotline")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        fail("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug: one clear line, the traceback only on request
        if os.environ.get("AMPARO_TRACEBACK"):
            raise
        fail(
            f"unexpected error (a bug in amparo): {type(exc).__name__}: {exc}",
            hint="run again with AMPARO_TRACEBACK=1 to see where, and report it",
        )
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
