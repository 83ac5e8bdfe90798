"""`amparo webhooks`: Webhook endpoints and the delivery outbox."""

from __future__ import annotations

import typer

app = typer.Typer(help="Webhook endpoints and the delivery outbox.", no_args_is_help=True)
