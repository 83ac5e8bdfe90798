"""`amparo cases`: Review cases: list, show, decide."""

from __future__ import annotations

import typer

app = typer.Typer(help="Review cases: list, show, decide.", no_args_is_help=True)
