"""`amparo rules`: Action rules: what happens to a match."""

from __future__ import annotations

import typer

app = typer.Typer(help="Action rules: what happens to a match.", no_args_is_help=True)
