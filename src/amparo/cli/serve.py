"""``amparo serve``: run the HTTP API (FastAPI on uvicorn)."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from amparo.cli.context import err_console, handle_errors, settings_from

HELP = """Run the matching service: Amparo's v1 API, HMA-compatible routes, /metrics.

Every route but /healthz needs an API key (`amparo keys create NAME --scope matcher`).
Example: amparo serve --port 8080 --workers 4
"""


@handle_errors
def serve_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (8080).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
) -> None:
    import uvicorn

    from amparo.api import create_app
    from amparo.api.logs import log_config

    settings = settings_from(ctx, api_host=host, api_port=port)
    # Workers are separate processes built by the factory from AMPARO_* variables, so pass
    # on what the command line resolved.
    os.environ["AMPARO_HOME"] = str(settings.home.resolve())
    if settings.database_url:
        os.environ["AMPARO_DATABASE_URL"] = settings.database_url
    os.environ["AMPARO_API_HOST"] = settings.api_host
    os.environ["AMPARO_API_PORT"] = str(settings.api_port)
    level = "info" if settings.log_level.upper() in ("DEBUG", "INFO") else "warning"
    err_console.print(
        f"serving on http://{settings.api_host}:{settings.api_port} ({workers} worker(s))",
        markup=False,
    )
    common: dict[str, Any] = {
        "host": settings.api_host,
        "port": settings.api_port,
        "log_config": log_config(settings.log_level),
        "log_level": level,
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
    }
    if workers > 1:
        uvicorn.run("amparo.api:create_app_from_env", factory=True, workers=workers, **common)
    else:
        uvicorn.run(create_app(settings, server=True), **common)
