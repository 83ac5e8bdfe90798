"""`amparo reports`: Reports to hotlines: build, submit, package."""

from __future__ import annotations

import typer

app = typer.Typer(help="Reports to hotlines: build, submit, package.", no_args_is_help=True)
