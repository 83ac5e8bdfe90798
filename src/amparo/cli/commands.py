"""The ``amparo`` command's definition: global options, and the table of sub-commands.

Sub-commands are imported when they run (:mod:`amparo.cli.lazy`), so this module is cheap;
:mod:`amparo.cli.main` imports it only once a command line needs Typer (not for a bare
``amparo --version``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from amparo import __version__
from amparo.cli.context import GlobalOptions
from amparo.cli.lazy import LazyCommand, lazy_group

_NO_ARGS_HELP = {"no_args_is_help": True}

# Order is the order of `amparo --help`. A summary is the first paragraph of the command's help
# (its module's HELP, or its Typer's help=); tests/unit/test_cli_lazy.py holds them equal.
COMMANDS = (
    LazyCommand(
        "hash",
        "amparo.cli.hashcmd",
        "hash_command",
        "Hash files: one JSON line each with path, pdq, pdq_quality, md5, sha1, sha256.",
        options=_NO_ARGS_HELP,
    ),
    LazyCommand(
        "match",
        "amparo.cli.match",
        "match_command",
        "Look hashes up in the banks; one JSON line per match. Exit 1 if anything matched.",
        options=_NO_ARGS_HELP,
    ),
    LazyCommand(
        "scan",
        "amparo.cli.scan",
        "scan_command",
        "Scan files, folders and archives (zip, tar, nested) for known material.",
        options=_NO_ARGS_HELP,
    ),
    LazyCommand(
        "serve",
        "amparo.cli.serve",
        "serve_command",
        "Run the matching service: Amparo's v1 API, HMA-compatible routes, /metrics.",
    ),
    LazyCommand(
        "bank",
        "amparo.cli.bank",
        "app",
        "Manage banks: named hash lists with provenance.",
        group=True,
    ),
    LazyCommand(
        "keys", "amparo.cli.keys", "app", "Manage API keys for `amparo serve`.", group=True
    ),
    LazyCommand(
        "index",
        "amparo.cli.indexcmd",
        "app",
        "The on-disk signal indexes (PDQ and digests), kept in step with the database.",
        group=True,
    ),
    LazyCommand(
        "rules", "amparo.cli.rules", "app", "Action rules: what happens to a match.", group=True
    ),
    LazyCommand(
        "webhooks",
        "amparo.cli.webhooks",
        "app",
        "Webhook endpoints and the delivery outbox.",
        group=True,
    ),
    LazyCommand(
        "cases",
        "amparo.cli.cases",
        "app",
        "Review cases: list the queue, show a case, decide, handle entries disabled after "
        "false positives.",
        group=True,
    ),
    LazyCommand(
        "evidence",
        "amparo.cli.evidence",
        "app",
        "The encrypted evidence store: preserve, list, read, hold, purge, rotate-key, verify.",
        group=True,
    ),
    LazyCommand(
        "reports",
        "amparo.cli.reports",
        "app",
        "Reports to hotlines from confirmed cases: build, submit, package.",
        group=True,
    ),
    LazyCommand(
        "package",
        "amparo.cli.package",
        "app",
        "Verify and open a report package you received (no Amparo installation needed beyond "
        "`pip install amparo`).",
        group=True,
    ),
    LazyCommand(
        "audit",
        "amparo.cli.auditcmd",
        "app",
        "The tamper-evident audit log: verify, export, checkpoint.",
        group=True,
    ),
    LazyCommand(
        "exchange",
        "amparo.cli.exchange",
        "app",
        "Collaborations: hash lists fetched from a source (a file or URL, NCMEC, StopNCII, "
        "ThreatExchange, another Amparo) into a bank.",
        group=True,
    ),
    LazyCommand(
        "feeds",
        "amparo.cli.feeds",
        "app",
        "Federation: publish banks as signed feeds to partner Amparo installations, and "
        "subscribe to theirs.",
        group=True,
    ),
    LazyCommand(
        "hotline",
        "amparo.cli.hotline",
        "app",
        "The hotline: URL reports crawled, verified, attributed and noticed to the host until "
        "the content is removed.",
        group=True,
    ),
)

app = typer.Typer(
    cls=lazy_group(*COMMANDS),
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
