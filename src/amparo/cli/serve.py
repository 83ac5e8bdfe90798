"""``amparo serve``: run the HTTP API (FastAPI on uvicorn)."""

from __future__ import annotations

import os
import socket
from typing import Annotated, Any

import typer

from amparo.cli.context import err_console, handle_errors, settings_from
from amparo.errors import AddressInUseError, AmparoError


def check_can_listen(host: str, port: int) -> None:
    """Bind ``host:port`` as uvicorn will (SO_REUSEADDR), then let go: a busy port or an
    address this machine does not have is a clear error before "serving on" is printed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise AmparoError(
            f"cannot listen on {host!r}: {exc}",
            hint="--host takes an address of this machine (127.0.0.1, 0.0.0.0, ::1)",
        ) from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise AddressInUseError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="another program (or another amparo serve) holds that port: stop it, or "
                "choose another with --port",
            ) from None


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
    settings = settings_from(ctx, api_host=host, api_port=port)
    check_can_listen(settings.api_host, settings.api_port)

    from amparo.api.metrics import prepare_multiprocess_dir

    # Before the app (and its metrics) exist: every worker writes its figures there and any
    # of them answers a scrape with the sum.
    prepare_multiprocess_dir(settings.home.resolve())

    import uvicorn

    from amparo.api import create_app
    from amparo.api.logs import log_config

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
    try:
        if workers > 1:
            uvicorn.run("amparo.api:create_app_from_env", factory=True, workers=workers, **common)
        else:
            uvicorn.run(create_app(settings, server=True), **common)
    except SystemExit as exc:
        # uvicorn exits with its own codes (3 when startup fails, 1 when it cannot bind):
        # Amparo's are 0, 1 (partly done) and 2 (an error the user can fix).
        if exc.code not in (None, 0):
            raise AmparoError(
                "the server stopped with an error (see the log above)",
                hint="check the address and port, and the log lines before this one",
            ) from None
