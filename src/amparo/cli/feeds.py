"""``amparo feeds ...``: publish banks to partner installations (signed feeds), grant and
revoke them, see partners' acknowledgements and opinions, print the key partners pin, and
subscribe to another installation's feed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from amparo.cli.context import ID_MAX, emit_json, err_console, handle_errors, open_app
from amparo.config import LOCAL_ACTOR
from amparo.errors import InputError
from amparo.exchanges.feed_model import Feed
from amparo.exchanges.model import Collaboration
from amparo.exchanges.signing import load_public_key, public_key_pem
from amparo.names import validate_name

app = typer.Typer(
    help="Federation: publish banks as signed feeds to partner Amparo installations, and "
    "subscribe to theirs.\n\nExample: amparo feeds publish shared --bank verified && amparo "
    "keys create hotline-b --scope partner && amparo feeds grant shared hotline-b",
    no_args_is_help=True,
)

FeedArg = Annotated[str, typer.Argument(help="Feed name.", show_default=False)]
KeyArg = Annotated[str, typer.Argument(help="The partner API key's name.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _grant_json(g: Any) -> dict[str, object]:
    return {
        "key": g.key_name,
        "granted_at": g.granted_at,
        "partner_key_pinned": g.partner_public_key is not None,
        "ack_cursor": g.ack_cursor,
        "acked_at": g.acked_at,
        "revoked_at": g.revoked_at,
        "unacknowledged_withdrawals": g.unacknowledged_withdrawals,
    }


def _feed_json(f: Feed) -> dict[str, object]:
    return {
        "name": f.name,
        "bank": f.bank,
        "description": f.description,
        "created_at": f.created_at,
        "grants": [_grant_json(g) for g in f.grants],
    }


def _read_pem(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot read {what} {path}: {exc.strerror or exc}",
            hint="pass the file the other installation's `amparo feeds key` wrote",
        ) from None
    return public_key_pem(load_public_key(text, what=f"{what} {path}"))


@app.command("publish")
@handle_errors
def publish(
    ctx: typer.Context,
    name: FeedArg,
    bank: Annotated[str, typer.Option("--bank", help="The bank to publish.")],
    description: Annotated[str, typer.Option(help="What the feed is.")] = "",
) -> None:
    """Publish a bank as a feed (granted to no one yet).
    Example: amparo feeds publish shared --bank verified"""
    with open_app(ctx) as amparo:
        feed = amparo.feeds.publish(name, bank, description=description, actor=LOCAL_ACTOR)
    err_console.print(
        f"feed {feed.name} publishes bank {feed.bank}; grant it with: amparo feeds grant "
        f"{feed.name} KEYNAME",
        markup=False,
    )


@app.command("unpublish")
@handle_errors
def unpublish(ctx: typer.Context, name: FeedArg) -> None:
    """Stop publishing a feed (the bank stays). Example: amparo feeds unpublish shared"""
    with open_app(ctx) as amparo:
        amparo.feeds.unpublish(name, actor=LOCAL_ACTOR)
    err_console.print(f"feed {name} unpublished", markup=False)


@app.command("list")
@handle_errors
def list_feeds(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List published feeds. Example: amparo feeds list"""
    with open_app(ctx) as amparo:
        feeds = amparo.feeds.list()
    if as_json:
        for f in feeds:
            emit_json(_feed_json(f))
        return
    table = Table("feed", "bank", "partners", "description")
    for f in feeds:
        active = [g.key_name for g in f.grants if g.active]
        table.add_row(f.name, f.bank, ", ".join(active) or "-", f.description)
    Console().print(table)


@app.command("show")
@handle_errors
def show(ctx: typer.Context, name: FeedArg, as_json: JsonOpt = False) -> None:
    """Show a feed's grants: each partner's acknowledged cursor and how many withdrawals it
    has not yet acknowledged. Example: amparo feeds show shared"""
    with open_app(ctx) as amparo:
        feed = amparo.feeds.show(name)
    if as_json:
        emit_json(_feed_json(feed))
        return
    Console().print(f"feed {feed.name} (bank {feed.bank}) {feed.description}".rstrip())
    table = Table("partner key", "granted", "opinion key pinned", "ack cursor", "acked at",
                  "unacked withdrawals", "revoked")  # fmt: skip
    for g in feed.grants:
        table.add_row(
            g.key_name,
            g.granted_at.isoformat(timespec="seconds"),
            "yes" if g.partner_public_key else "no",
            g.ack_cursor or "-",
            g.acked_at.isoformat(timespec="seconds") if g.acked_at else "-",
            str(g.unacknowledged_withdrawals),
            g.revoked_at.isoformat(timespec="seconds") if g.revoked_at else "-",
        )
    Console().print(table)


@app.command("grant")
@handle_errors
def grant(
    ctx: typer.Context,
    name: FeedArg,
    key_name: KeyArg,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="The partner's feed public key (its `amparo feeds key`): its opinions must "
            "be signed with it.",
        ),
    ] = None,
) -> None:
    """Let a partner key read a feed.
    Example: amparo feeds grant shared hotline-b --public-key hotline-b.pem"""
    pem = _read_pem(public_key, "the partner's public key") if public_key else None
    with open_app(ctx) as amparo:
        amparo.feeds.grant(name, key_name, public_key=pem, actor=LOCAL_ACTOR)
    pinned = " (opinions must be signed with its key)" if pem else ""
    err_console.print(f"feed {name} granted to key {key_name}{pinned}", markup=False)


@app.command("revoke")
@handle_errors
def revoke(ctx: typer.Context, name: FeedArg, key_name: KeyArg) -> None:
    """Revoke a partner key's grant. Example: amparo feeds revoke shared hotline-b"""
    with open_app(ctx) as amparo:
        amparo.feeds.revoke(name, key_name, actor=LOCAL_ACTOR)
    err_console.print(f"feed {name}: grant to {key_name} revoked", markup=False)


@app.command("withdraw")
@handle_errors
def withdraw(
    ctx: typer.Context,
    name: FeedArg,
    entry_ids: Annotated[
        list[int],
        typer.Argument(help="Entry ids of the feed's bank.", min=1, max=ID_MAX, show_default=False),
    ],
) -> None:
    """Withdraw entries: removed from the bank, the deletion reaches every subscriber.
    Example: amparo feeds withdraw shared 1042 1043"""
    with open_app(ctx) as amparo:
        count = amparo.feeds.withdraw(name, entry_ids, actor=LOCAL_ACTOR)
    err_console.print(f"feed {name}: withdrew {count}", markup=False)


@app.command("opinions")
@handle_errors
def opinions(ctx: typer.Context, name: FeedArg, as_json: JsonOpt = False) -> None:
    """Partners' opinions per entry, most false positives first.
    Example: amparo feeds opinions shared"""
    with open_app(ctx) as amparo:
        counts = amparo.feeds.opinion_counts(name)
    if as_json:
        for c in counts:
            emit_json(
                {
                    "entry_id": c.entry_id,
                    "signal_type": c.signal_type,
                    "true_positive": c.true_positive,
                    "false_positive": c.false_positive,
                    "partners": c.partners,
                }
            )
        return
    table = Table("entry", "type", "true positive", "false positive", "partners")
    for c in counts:
        table.add_row(
            str(c.entry_id),
            c.signal_type or "-",
            str(c.true_positive),
            str(c.false_positive),
            ", ".join(f"{k}: {v}" for k, v in c.partners.items()),
        )
    Console().print(table)


@app.command("key")
@handle_errors
def key(ctx: typer.Context) -> None:
    """Print this installation's feed public key (PEM) for partners to pin; created on first
    use. Example: amparo feeds key > hotline-a.pem"""
    with open_app(ctx) as amparo:
        pem = amparo.feeds.public_key()
        err_console.print(
            f"organisation {amparo.feeds.organisation}, key id {amparo.feeds.key_id()}",
            markup=False,
        )
    typer.echo(pem, nl=False)


def _check_credentials(ref: str) -> str:
    kind, _, rest = ref.partition(":")
    if kind not in ("file", "env") or not rest:
        raise InputError(
            # Not quoted: a mistyped reference may be the partner key itself.
            "invalid credentials reference (not file:... or env:...)",
            hint="use file:/path/to/secret (in <home>/secrets) or env:AMPARO_SECRET_NAME "
            "(holding the partner API key)",
        )
    return ref


@app.command("subscribe")
@handle_errors
def subscribe(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The publisher's base URL.", show_default=False)],
    feed: Annotated[str, typer.Option("--feed", help="The feed's name at the publisher.")],
    public_key: Annotated[
        Path, typer.Option("--public-key", help="The publisher's `amparo feeds key` (PEM).")
    ],
    credentials: Annotated[
        str,
        typer.Option(
            "--credentials",
            help="Where the partner API key is: file:/path (in <home>/secrets) or "
            "env:AMPARO_SECRET_NAME.",
        ),
    ],
    bank: Annotated[str, typer.Option("--bank", help="The local bank the feed fills.")],
    name: Annotated[
        str | None, typer.Option("--name", help="The collaboration's name (default: the feed's).")
    ] = None,
    interval: Annotated[
        int, typer.Option("--interval", min=10, help="Seconds between fetches in amparo serve.")
    ] = 300,
) -> None:
    """Subscribe a local bank to another Amparo's feed (a collaboration of type amparo).
    Example: amparo feeds subscribe https://a.example --feed shared --public-key a.pem
    --credentials env:AMPARO_SECRET_HOTLINE_A --bank from-a"""
    pem = _read_pem(public_key, "the publisher's public key")
    collaboration = Collaboration(
        name=validate_name(name or feed, "collaboration"),
        exchange="amparo",
        bank=bank,
        settings={"url": url, "feed": feed, "public_key": pem},
        credentials=_check_credentials(credentials),
        interval_seconds=interval,
    )
    from amparo.exchanges.amparo_feed import AmparoFeedExchange

    collaboration.settings = AmparoFeedExchange.check_settings(collaboration.settings)
    with open_app(ctx) as amparo:
        amparo.exchanges.add(collaboration, actor=LOCAL_ACTOR)
    err_console.print(
        f"collaboration {collaboration.name} fetches feed {feed} from {url} into bank {bank} "
        f"every {interval} s; fetch now with: amparo exchange fetch {collaboration.name}",
        markup=False,
    )
