"""`amparo evidence`: The encrypted evidence store: preserve, read, hold, purge, rotate-key."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="The encrypted evidence store: preserve, read, hold, purge, rotate-key.",
    no_args_is_help=True,
)
