"""`amparo audit`: The tamper-evident audit log: verify, export."""

from __future__ import annotations

import typer

app = typer.Typer(help="The tamper-evident audit log: verify, export.", no_args_is_help=True)
