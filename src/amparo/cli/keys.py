"""``amparo keys ...``: create, list and revoke API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from amparo.cli.context import emit_json, err_console, handle_errors, open_app
from amparo.config import LOCAL_ACTOR
from amparo.keys import SCOPES, KeyService

app = typer.Typer(
    help="Manage API keys for `amparo serve`.\n\nExample: KEY=$(amparo keys create scanner "
    "--scope matcher)",
    no_args_is_help=True,
)


@app.command("create")
@handle_errors
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the key (who or what uses it).")],
    scopes: Annotated[
        list[str],
        typer.Option("--scope", "-s", help="Scope (repeatable): " + ", ".join(SCOPES) + "."),
    ],
    rate: Annotated[
        float | None, typer.Option(help="Requests a second for this key (default: by scope).")
    ] = None,
    burst: Annotated[int | None, typer.Option(help="Burst size for --rate.")] = None,
) -> None:
    """Create a key and print it, alone, on stdout. It is shown only this once.
    Example: KEY=$(amparo keys create uploads --scope matcher)"""
    with open_app(ctx) as amparo:
        new = KeyService(amparo.store).create(
            name, scopes, rate_per_second=rate, burst=burst, actor=LOCAL_ACTOR
        )
    typer.echo(new.secret)
    err_console.print(
        f"created key {name} ({', '.join(new.key.scopes)}); store it now: it cannot be shown again",
        markup=False,
    )


@app.command("list")
@handle_errors
def list_keys(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys (names, scopes, limits; never the keys themselves).
    Example: amparo keys list --json"""
    with open_app(ctx) as amparo:
        keys = KeyService(amparo.store).list()
    if as_json:
        for k in keys:
            emit_json(
                {
                    "name": k.name,
                    "scopes": list(k.scopes),
                    "rate_per_second": k.rate_per_second,
                    "burst": k.burst,
                    "created_at": k.created_at,
                    "revoked_at": k.revoked_at,
                }
            )
        return
    table = Table("name", "scopes", "rate", "created", "revoked")
    for k in keys:
        table.add_row(
            k.name,
            ",".join(k.scopes),
            "" if k.rate_per_second is None else f"{k.rate_per_second:g}/s",
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "",
        )
    Console().print(table)


@app.command("revoke")
@handle_errors
def revoke(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The key's name.")]
) -> None:
    """Revoke a key: it stops working within api_key_cache_seconds.
    Example: amparo keys revoke uploads"""
    with open_app(ctx) as amparo:
        KeyService(amparo.store).revoke(name, actor=LOCAL_ACTOR)
    err_console.print(f"revoked key {name}", markup=False)
