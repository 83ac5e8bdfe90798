"""``amparo exchange``: collaborations (an exchange feeding a bank), their status and fetches.

Every command calls :class:`amparo.exchanges.service.ExchangeService` only. Credentials are
given and shown as a reference (``file:/path`` or ``env:AMPARO_SECRET_NAME``), never as the secret.
What the commands print (tables, JSON, fetch results, the ``fetch --follow`` loop) is in
:mod:`amparo.cli.exchange_show`.
"""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Annotated, Any

import typer

from amparo.cli.context import emit_json, err_console, fail, handle_errors, open_app
from amparo.cli.exchange_show import (
    Reporter,
    duration,
    follow_schedule,
    print_list,
    print_status,
    print_types,
    quarantined_json,
    status_json,
)
from amparo.config import LOCAL_ACTOR
from amparo.errors import InputError
from amparo.exchanges.model import Collaboration

app = typer.Typer(
    help="Collaborations: hash lists fetched from a source (a file or URL, NCMEC, StopNCII, "
    "ThreatExchange, another Amparo) into a bank.\n\nExample: amparo exchange add mx-list "
    "--type url --bank shared --setting url=https://hotline.example/list.csv --interval 1h "
    "&& amparo exchange fetch mx-list; see docs/exchanges.md",
    no_args_is_help=True,
)

EXIT_FETCH_FAILED = 1
SHOWN_QUARANTINE = 5
CREDENTIALS_REFERENCE = re.compile(r"^(file:.+|env:[A-Za-z_][A-Za-z0-9_]*)$")
CREDENTIALS_HINT = (
    "give where the secret is, not the secret: --credentials file:/path/to/secret.json "
    "or --credentials env:AMPARO_SECRET_NAME"
)
INTERVAL_HINT = "give seconds (3600) or a duration: 90s, 15m, 1h, 1h30m, 1d"
_INTERVAL_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

NameArg = Annotated[str, typer.Argument(help="Collaboration name.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


# -- parsing ------------------------------------------------------------------------------


def parse_interval(text: str) -> int:
    """``3600``, ``90s``, ``15m``, ``1h``, ``1h30m``, ``1d`` -> seconds (at least 1)."""
    value = text.strip().lower()
    seconds: float
    if re.fullmatch(r"\d+", value):
        seconds = int(value)
    elif value and _INTERVAL_PART.sub("", value) == "":
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _INTERVAL_PART.findall(value))
    else:
        raise InputError(f"--interval {text!r} is not a duration", hint=INTERVAL_HINT)
    if seconds < 1 or seconds > 366 * 86400:
        raise InputError(
            f"--interval {text!r} is out of range", hint="between 1 second and 366 days"
        )
    return int(seconds)


def parse_settings(pairs: list[str], settings_json: str | None) -> dict[str, Any]:
    """``--settings-json`` (an object) first, then each ``--setting KEY=VALUE`` over it
    (values stay text; give typed values in ``--settings-json``)."""
    settings: dict[str, Any] = {}
    if settings_json is not None:
        try:
            loaded = json.loads(settings_json)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"--settings-json is not JSON: {exc.msg} at character {exc.pos}",
                hint='give an object, e.g. --settings-json \'{"environment": "test"}\'',
            ) from None
        if not isinstance(loaded, dict):
            raise InputError(
                "--settings-json must be a JSON object",
                hint='e.g. --settings-json \'{"environment": "test"}\'',
            )
        settings.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(
                f"--setting {pair!r} is not KEY=VALUE",
                hint="e.g. --setting url=https://hotline.example/list.csv (once per setting)",
            )
        settings[key.strip()] = value
    return settings


def check_credentials(value: str | None) -> str | None:
    if value is None:
        return None
    if not CREDENTIALS_REFERENCE.match(value):
        shown = value[:6] + "..." if len(value) > 8 else "..."
        raise InputError(f"--credentials {shown!r} is not a reference", hint=CREDENTIALS_HINT)
    return value


# -- commands -----------------------------------------------------------------------------


@app.command("add")
@handle_errors
def add(
    ctx: typer.Context,
    name: NameArg,
    exchange_type: Annotated[
        str,
        typer.Option("--type", help="Exchange type (amparo exchange types).", show_default=False),
    ],
    bank: Annotated[
        str, typer.Option("--bank", help="Bank it feeds (made if missing).", show_default=False)
    ],
    setting: Annotated[
        list[str] | None,
        typer.Option("--setting", help="An exchange setting, KEY=VALUE (repeatable)."),
    ] = None,
    settings_json: Annotated[
        str | None, typer.Option("--settings-json", help="Settings as a JSON object.")
    ] = None,
    credentials: Annotated[
        str | None,
        typer.Option(
            "--credentials",
            help="Where the secret is: file:/path (in <home>/secrets) or env:AMPARO_SECRET_NAME.",
        ),
    ] = None,
    interval: Annotated[
        str, typer.Option("--interval", help="How often serve fetches it: 3600, 15m, 1h, 1d.")
    ] = "1h",
    no_feedback: Annotated[
        bool, typer.Option("--no-feedback", help="Send no reviewer opinions to the source.")
    ] = False,
    paused: Annotated[
        bool, typer.Option("--paused", help="Add it paused (no scheduled fetches).")
    ] = False,
) -> None:
    """Add a collaboration: an exchange that feeds a bank. Example: amparo exchange add
    ncmec-test --type ncmec --bank ncmec --setting environment=test --credentials
    file:$HOME/amparo-data/secrets/ncmec.json --interval 15m"""
    collaboration = Collaboration(
        name=name,
        exchange=exchange_type,
        bank=bank,
        settings=parse_settings(setting or [], settings_json),
        credentials=check_credentials(credentials),
        interval_seconds=parse_interval(interval),
        enabled=not paused,
        feedback=not no_feedback,
    )
    with open_app(ctx) as amparo:
        added = amparo.exchanges.add(collaboration, actor=LOCAL_ACTOR)
    state = "paused" if not added.enabled else f"every {duration(added.interval_seconds)}"
    err_console.print(
        f"added collaboration {added.name} ({added.exchange} -> bank {added.bank}, {state}); "
        f"fetch it now with: amparo exchange fetch {added.name}",
        markup=False,
        soft_wrap=True,
    )


@app.command("list")
@handle_errors
def list_collaborations(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List collaborations with their fetch status. Example: amparo exchange list --json"""
    with open_app(ctx) as amparo:
        statuses = amparo.exchanges.list()
    if as_json:
        for s in statuses:
            emit_json(status_json(s))
        return
    print_list(statuses)


@app.command("show")
@handle_errors
def show(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Show a collaboration's status: last fetch, lag, entries, quarantine, lease, next
    fetch, checkpoint. Example: amparo exchange show ncmec-test"""
    with open_app(ctx) as amparo:
        s = amparo.exchanges.status(name)
        quarantine = (
            amparo.exchanges.quarantined(name, limit=SHOWN_QUARANTINE) if s.quarantined else []
        )
    if as_json:
        emit_json({**status_json(s), "quarantine": [quarantined_json(q) for q in quarantine]})
        return
    print_status(s, quarantine)


@app.command("types")
@handle_errors
def types(as_json: JsonOpt = False) -> None:
    """List the exchange types `--type` takes. Example: amparo exchange types"""
    from amparo.exchanges.base import exchange_types

    print_types(exchange_types(), as_json)


@app.command("fetch")
@handle_errors
def fetch(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(help="Collaboration (default: every enabled one).", show_default=False),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Ignore the checkpoint: fetch everything, converge.")
    ] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", help="Keep fetching on each collaboration's schedule until Ctrl-C."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each fetch's result as a JSON line.")
    ] = False,
) -> None:
    """Fetch one collaboration, or every enabled one, now. Exit 0 when every fetch worked,
    1 when one failed (the others still run), 2 on bad input. With --follow, keep fetching
    what is due (as `amparo serve` does) until Ctrl-C. Example: amparo exchange fetch
    ncmec-test --full"""
    with open_app(ctx) as amparo:
        report = Reporter(as_json)
        names = (
            [name]
            if name is not None
            else [s.collaboration.name for s in amparo.exchanges.list() if s.collaboration.enabled]
        )
        if not names:
            err_console.print(
                "no enabled collaborations to fetch (amparo exchange list)", markup=False
            )
        for each in names:
            report.run(each, partial(amparo.exchanges.fetch, each, full=full), single=name)
        if follow:
            follow_schedule(amparo, name, report)
            return
    if report.failed:
        raise fail(
            f"{len(report.failed)} of {len(names)} fetches failed: {', '.join(report.failed)}",
            hint="the output above gives each error; amparo exchange show NAME has the details",
            code=EXIT_FETCH_FAILED,
        )


def _set_enabled(ctx: typer.Context, name: str, enabled: bool) -> None:
    with open_app(ctx) as amparo:
        if enabled:
            c = amparo.exchanges.resume(name, actor=LOCAL_ACTOR)
        else:
            c = amparo.exchanges.pause(name, actor=LOCAL_ACTOR)
    if c.enabled:
        message = f"resumed {c.name}: fetched every {duration(c.interval_seconds)} again"
    else:
        message = f"paused {c.name}: no scheduled fetches until `amparo exchange resume {c.name}`"
    err_console.print(message, markup=False)


@app.command("pause")
@handle_errors
def pause(ctx: typer.Context, name: NameArg) -> None:
    """Stop fetching a collaboration on schedule (its entries stay; `fetch NAME` still
    works). Example: amparo exchange pause ncmec-test"""
    _set_enabled(ctx, name, False)


@app.command("resume")
@handle_errors
def resume(ctx: typer.Context, name: NameArg) -> None:
    """Fetch a paused collaboration on schedule again. Example: amparo exchange resume
    ncmec-test"""
    _set_enabled(ctx, name, True)


@app.command("remove")
@handle_errors
def remove(
    ctx: typer.Context,
    name: NameArg,
    withdraw_entries: Annotated[
        bool,
        typer.Option(
            "--withdraw-entries", help="Also withdraw the entries it added (default: keep)."
        ),
    ] = False,
) -> None:
    """Remove a collaboration (no confirmation). Its entries stay in the bank unless
    --withdraw-entries. Example: amparo exchange remove old-list --withdraw-entries"""
    with open_app(ctx) as amparo:
        s = amparo.exchanges.status(name)
        amparo.exchanges.remove(name, actor=LOCAL_ACTOR, keep_entries=not withdraw_entries)
    bank, records = s.collaboration.bank, s.records
    if withdraw_entries:
        tail = f"its {records:,} entries were withdrawn from bank {bank}"
    else:
        tail = (
            f"its {records:,} entries stay in bank {bank} (remove them with "
            "--withdraw-entries, or amparo bank remove)"
        )
    err_console.print(f"removed collaboration {name}; {tail}", markup=False, soft_wrap=True)
