"""``amparo webhooks``: webhook endpoints, the delivery outbox, and the deliverer."""

from __future__ import annotations

import contextlib
import signal
import threading
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from amparo.actions import Deliverer, DeliveryResult, NewEndpoint
from amparo.actions.webhooks import check_endpoint_url
from amparo.cli.context import emit_json, err_console, fail, handle_errors, open_app
from amparo.config import LOCAL_ACTOR
from amparo.url_policy import UrlPolicy

app = typer.Typer(
    help="Webhook endpoints and the delivery outbox.\n\nExample: amparo webhooks add platform "
    "https://platform.example/amparo (prints the signing secret once); see docs/actions.md",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Endpoint name.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")]


@app.command("add")
@handle_errors
def add(
    ctx: typer.Context,
    name: NameArg,
    url: Annotated[str, typer.Argument(help="Where events are POSTed (http or https).")],
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Add it disabled (events wait in the outbox).")
    ] = False,
) -> None:
    """Add an endpoint and print its signing secret (shown this once: store it with the
    receiver). Example: amparo webhooks add platform https://platform.example/amparo"""
    with open_app(ctx) as amparo:
        check_endpoint_url(url, UrlPolicy.from_settings(amparo.settings))
        new = amparo.actions.outbox.add_endpoint(name, url, enabled=not disabled, actor=LOCAL_ACTOR)
    err_console.print(
        f"added webhook endpoint {name}; its signing secret (shown once) is on stdout",
        markup=False,
    )
    typer.echo(new.secret)


@app.command("list")
@handle_errors
def list_endpoints(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List endpoints (never their secrets)."""
    with open_app(ctx) as amparo:
        endpoints = amparo.actions.outbox.list_endpoints()
        counts = amparo.actions.outbox.counts()
    if as_json:
        for e in endpoints:
            emit_json(e.to_json())
        return
    table = Table("name", "url", "enabled", "created")
    for e in endpoints:
        table.add_row(e.name, e.url, "yes" if e.enabled else "no", f"{e.created_at:%Y-%m-%d}")
    Console().print(table)
    err_console.print(
        "outbox: " + ", ".join(f"{n:,} {state}" for state, n in counts.items()), markup=False
    )


def _set(ctx: typer.Context, name: str, **changes: object) -> None:
    with open_app(ctx) as amparo:
        changed = amparo.actions.outbox.update_endpoint(name, actor=LOCAL_ACTOR, **changes)  # type: ignore[arg-type]
    if isinstance(changed, NewEndpoint):
        err_console.print(f"new signing secret for {name} (shown once) is on stdout", markup=False)
        typer.echo(changed.secret)
    else:
        err_console.print(f"{name}: {'enabled' if changed.enabled else 'disabled'}", markup=False)


@app.command("enable")
@handle_errors
def enable(ctx: typer.Context, name: NameArg) -> None:
    """Enable an endpoint: its waiting events are delivered."""
    _set(ctx, name, enabled=True)


@app.command("disable")
@handle_errors
def disable(ctx: typer.Context, name: NameArg) -> None:
    """Disable an endpoint: new events wait in the outbox until it is enabled again."""
    _set(ctx, name, enabled=False)


@app.command("rotate-secret")
@handle_errors
def rotate_secret(ctx: typer.Context, name: NameArg) -> None:
    """Issue a new signing secret (printed once); events are signed with it from now on."""
    _set(ctx, name, rotate_secret=True)


@app.command("remove")
@handle_errors
def remove(ctx: typer.Context, name: NameArg) -> None:
    """Remove an endpoint; its undelivered events are marked dead (rules naming it fail)."""
    with open_app(ctx) as amparo:
        dead = amparo.actions.outbox.remove_endpoint(name, actor=LOCAL_ACTOR)
    err_console.print(f"removed {name}; {dead:,} undelivered events marked dead", markup=False)


@app.command("test")
@handle_errors
def test(ctx: typer.Context, name: NameArg) -> None:
    """Send a signed ``type: test`` event to an endpoint now. Exit 0 when it answered 2xx.
    A URL the address policy refuses is reported as refused, without connecting."""
    with open_app(ctx) as amparo:
        deliverer = Deliverer.from_settings(amparo.actions.outbox, amparo.settings)
        try:
            result = deliverer.send_test(name)
        finally:
            deliverer.close()
    emit_json(_result_json(result))
    if not result.delivered:
        raise fail(f"{name} did not accept the test event: {result.error}")


@app.command("outbox")
@handle_errors
def outbox(
    ctx: typer.Context,
    state: Annotated[
        str | None, typer.Option("--state", help="pending, delivered or dead.")
    ] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Only this endpoint.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most events shown.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Show outbox events, newest first. Example: amparo webhooks outbox --state dead"""
    with open_app(ctx) as amparo:
        events = amparo.actions.outbox.events(state=state, endpoint=endpoint, limit=limit)
    if as_json:
        for e in events:
            emit_json(e.to_json())
        return
    table = Table("id", "event id", "endpoint", "state", "attempts", "next attempt", "last error")
    for e in events:
        table.add_row(
            str(e.id),
            e.event_id,
            e.endpoint,
            e.state,
            str(e.attempts),
            f"{e.next_attempt_at:%Y-%m-%d %H:%M:%S}" if e.state == "pending" else "",
            (e.last_error or "")[:60],
        )
    Console().print(table)


@app.command("retry")
@handle_errors
def retry(
    ctx: typer.Context,
    event: Annotated[str, typer.Argument(help="Outbox id or event id.", show_default=False)],
) -> None:
    """Send an event again now; a dead event gets a fresh set of attempts."""
    with open_app(ctx) as amparo:
        e = amparo.actions.outbox.retry(event, actor=LOCAL_ACTOR)
    err_console.print(f"event {e.event_id} to {e.endpoint} is due now", markup=False)


@app.command("deliver")
@handle_errors
def deliver(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Try the events due now, then exit.")
    ] = False,
) -> None:
    """Deliver outbox events until stopped (Ctrl-C or SIGTERM). Several deliverers may run
    at once (leases keep them apart); `amparo serve` delivers too unless
    webhook_deliver_in_serve is false."""
    with open_app(ctx) as amparo:
        deliverer = Deliverer.from_settings(amparo.actions.outbox, amparo.settings)
        try:
            if once:
                for result in deliverer.run_once():
                    emit_json(_result_json(result))
                return
            stop = threading.Event()

            def on_signal(_signum: int, _frame: FrameType | None) -> None:
                stop.set()

            signal.signal(signal.SIGTERM, on_signal)
            err_console.print("delivering webhook events; Ctrl-C stops", markup=False)
            with contextlib.suppress(KeyboardInterrupt):
                deliverer.run_forever(stop, on_result=lambda r: emit_json(_result_json(r)))
        finally:
            deliverer.close()


def _result_json(r: DeliveryResult) -> dict[str, object]:
    return {"event_id": r.event_id, "delivered": r.delivered, "status": r.status, "error": r.error}
