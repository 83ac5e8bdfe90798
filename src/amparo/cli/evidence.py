"""`amparo evidence`: the encrypted evidence store: preserve, read, hold, purge, rotate-key."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from amparo.cli.context import ID_MAX, emit_json, err_console, fail, handle_errors, open_app
from amparo.config import LOCAL_ACTOR
from amparo.events import Source
from amparo.evidence.backends import ORPHAN_GRACE_SECONDS

app = typer.Typer(
    help="The encrypted evidence store: preserve, list, read, hold, purge, rotate-key, verify."
    "\n\nExample: amparo evidence preserve upload.jpg --reason 'manual: ticket 7'",
    no_args_is_help=True,
)

ItemArg = Annotated[
    int, typer.Argument(help="Evidence item id.", show_default=False, min=1, max=ID_MAX)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")]


def _actor() -> str:
    """Who the audit log names for evidence handled at the command line: ``local`` and the
    operating-system user (chain of custody), or ``local`` when the user is unknown."""
    try:
        return f"{LOCAL_ACTOR}:{getpass.getuser()}"
    except (KeyError, OSError):
        return LOCAL_ACTOR


@app.command("preserve")
@handle_errors
def preserve(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The file to preserve.", show_default=False)],
    reason: Annotated[str, typer.Option(help="Why it is kept (audited).")] = "manual",
    account_id: Annotated[str | None, typer.Option(help="The platform's account id.")] = None,
    upload_id: Annotated[str | None, typer.Option(help="The platform's upload id.")] = None,
    url: Annotated[str | None, typer.Option(help="Where the content was seen.")] = None,
    case_id: Annotated[int | None, typer.Option(help="The review case it belongs to.")] = None,
    retention_days: Annotated[
        int | None, typer.Option(help="Keep this many days (default evidence_retention_days).")
    ] = None,
) -> None:
    """Encrypt and keep a file; prints the item as JSON. The same content is kept once.
    Example: amparo evidence preserve upload.jpg --reason 'manual: ticket 7' --account-id 42"""
    source = Source(
        kind="cli",
        account_id=account_id,
        upload_id=upload_id,
        url=url,
        path=str(file.resolve()),
        file_name=file.name,
    )
    with open_app(ctx) as amparo:
        item = amparo.evidence.preserve(
            file,
            reason=reason,
            case_id=case_id,
            actor=_actor(),
            source=source,
            retention_days=retention_days,
        )
    emit_json(item.as_dict())


@app.command("list")
@handle_errors
def list_items(
    ctx: typer.Context,
    sha256: Annotated[str | None, typer.Option(help="Only items with this SHA-256.")] = None,
    case_id: Annotated[int | None, typer.Option(help="Only items of this case.")] = None,
    include_purged: Annotated[
        bool, typer.Option("--all", help="Include purged and discarded items.")
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many (newest first).")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List evidence items (metadata only). Example: amparo evidence list --case-id 3"""
    with open_app(ctx) as amparo:
        items = amparo.evidence.list(
            sha256=sha256, case_id=case_id, include_purged=include_purged, limit=limit
        )
    if as_json:
        for item in items:
            emit_json(item.as_dict())
        return
    table = Table("id", "sha256", "size", "reason", "preserved", "expires", "hold", "state")
    for i in items:
        table.add_row(
            str(i.id),
            i.sha256[:16] + "…",
            f"{i.size:,}",
            i.reason,
            f"{i.preserved_at:%Y-%m-%d}",
            f"{i.expires_at:%Y-%m-%d}" if i.expires_at else "never",
            "yes" if i.legal_hold else "",
            "held" if i.held else (i.purge_reason or "purged"),
        )
    Console().print(table)


@app.command("show")
@handle_errors
def show(ctx: typer.Context, item_id: ItemArg) -> None:
    """Show one item's metadata and every request to preserve it, as JSON.
    Example: amparo evidence show 12"""
    with open_app(ctx) as amparo:
        body = amparo.evidence.get(item_id).as_dict()
        body["sighting_log"] = amparo.evidence.sightings(item_id)
    emit_json(body)


@app.command("read")
@handle_errors
def read(
    ctx: typer.Context,
    item_id: ItemArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Write the content to this file.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Decrypt an item into a file (mode 0600) after checking its integrity; the read is
    audit-logged. Example: amparo evidence read 12 -o /secure/case-3/item-12.bin"""
    if output.exists() and not force:
        raise fail(f"{output} exists", hint="choose another file or pass --force")
    with open_app(ctx) as amparo:
        item = amparo.evidence.read_to(item_id, output, actor=_actor())
    err_console.print(f"wrote {item.size:,} bytes of item {item.id} to {output}", markup=False)


@app.command("hold")
@handle_errors
def hold(
    ctx: typer.Context,
    item_id: ItemArg,
    reason: Annotated[str, typer.Option(help="Why it must be kept (e.g. a court order).")],
) -> None:
    """Place a legal hold: the item is kept past its expiry until released.
    Example: amparo evidence hold 12 --reason 'preservation request 2026-118'"""
    with open_app(ctx) as amparo:
        emit_json(amparo.evidence.hold(item_id, reason=reason, actor=_actor()).as_dict())


@app.command("release")
@handle_errors
def release(ctx: typer.Context, item_id: ItemArg) -> None:
    """Lift a legal hold. Example: amparo evidence release 12"""
    with open_app(ctx) as amparo:
        emit_json(amparo.evidence.release(item_id, actor=_actor()).as_dict())


@app.command("discard")
@handle_errors
def discard(
    ctx: typer.Context,
    item_id: ItemArg,
    reason: Annotated[str, typer.Option(help="Why it may be deleted now.")],
) -> None:
    """Delete an item's content before its expiry (e.g. a false positive); its record stays.
    Refused while on legal hold. Example: amparo evidence discard 12 --reason 'false positive'"""
    with open_app(ctx) as amparo:
        emit_json(amparo.evidence.discard(item_id, reason=reason, actor=_actor()).as_dict())


GraceOpt = Annotated[
    float,
    typer.Option(
        help="Leave unowned blobs younger than this many seconds (a write may be in progress)."
    ),
]


@app.command("purge")
@handle_errors
def purge(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    orphan_grace: GraceOpt = ORPHAN_GRACE_SECONDS,
) -> None:
    """Delete the content of every expired item not on legal hold (each purge is audited),
    discard copies of false positives whose undo grace has passed, and remove orphaned
    blobs. Run it daily. Example: amparo evidence purge --dry-run"""
    with open_app(ctx) as amparo:
        report = amparo.evidence.purge(
            actor=_actor(), dry_run=dry_run, orphan_grace_seconds=orphan_grace
        )
    emit_json(
        {
            "dry_run": report.dry_run,
            "purged": report.purged,
            "false_positives_discarded": report.false_positives,
            "kept_on_legal_hold": report.held,
            "failed": report.failed,
            "orphans_removed": report.orphans.removed,
        }
    )


@app.command("rotate-key")
@handle_errors
def rotate_key(
    ctx: typer.Context,
    retire: Annotated[
        bool, typer.Option("--retire", help="Remove the old keys once nothing uses them.")
    ] = False,
) -> None:
    """Add a new key-encryption key and re-wrap every item's data key with it (content is
    not re-encrypted). Back up the keyring afterwards. Example: amparo evidence rotate-key
    --retire"""
    with open_app(ctx) as amparo:
        report = amparo.evidence.rotate_key(actor=_actor(), retire=retire)
        path = amparo.evidence.keyring_path
    emit_json(
        {
            "new_key": report.new_key,
            "rewrapped": report.rewrapped,
            "retired": report.retired,
            "still_used": report.still_used,
        }
    )
    err_console.print(f"keyring {path} changed: back it up now", markup=False)


@app.command("verify")
@handle_errors
def verify(
    ctx: typer.Context,
    quick: Annotated[
        bool, typer.Option("--quick", help="Only check blobs exist (do not decrypt).")
    ] = False,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair/--no-repair",
            help="Delete the orphaned blobs it finds (audited); without it they are only reported.",
        ),
    ] = False,
    orphan_grace: GraceOpt = ORPHAN_GRACE_SECONDS,
) -> None:
    """Check every held item (decrypt and compare its SHA-256) and report missing or damaged
    ones and orphaned blobs; nothing is deleted unless --repair is given. Exit code 2 when
    any item is damaged or missing. Example: amparo evidence verify"""
    with open_app(ctx) as amparo:
        report = amparo.evidence.verify(
            deep=not quick,
            repair=repair,
            orphan_grace_seconds=orphan_grace,
            actor=_actor(),
        )
    emit_json(
        {
            "checked": report.checked,
            "damaged": report.damaged,
            "missing": report.missing,
            "orphans": report.orphans.removed,
            "orphans_removed": repair,
            "ok": report.ok,
        }
    )
    if not report.ok:
        raise fail(
            f"{len(report.damaged)} damaged and {len(report.missing)} missing evidence items",
            hint="restore them from backup (see docs/evidence.md)",
        )
