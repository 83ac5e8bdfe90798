"""``amparo audit``: the tamper-evident audit log: verify, export, checkpoint, public-key, list."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from amparo.cli.context import emit_json, err_console, handle_errors, open_app
from amparo.errors import InputError
from amparo.store import audit as chain
from amparo.store.base import audit_key_path

app = typer.Typer(
    help="The tamper-evident audit log: verify, export, checkpoint.\n\nEvery entry carries the "
    "hash of the one before it, and signed checkpoints pin the chain, so an edited, removed or "
    "reordered entry is found. Example: amparo audit verify",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
EXIT_TAMPERED = 1


def _public_key(path: Path | None) -> Ed25519PublicKey | None:
    if path is None:
        return None
    return chain.load_public_key(path.read_bytes())


def _print_report(report: chain.VerifyReport, as_json: bool, source: str) -> None:
    if as_json:
        emit_json(report.to_json())
    elif report.ok:
        # Exit 0 either way, but only a signature pins entries: say how many are not yet
        # covered instead of calling an unsigned tail "intact" (issue #12, point 8).
        colour = "green" if report.unsigned == 0 else "yellow"
        err_console.print(
            f"[{colour}]{escape(report.summary())}[/]: {escape(source)}; head "
            f"{report.head_seq} {report.head_hash[:16]}",
            markup=True,
        )
        if report.unsigned:
            err_console.print(
                "  entries after the last checkpoint are protected by the hash chain only; "
                "sign the head now with: amparo audit checkpoint",
                markup=False,
            )
    else:
        err_console.print(
            f"[bold red]TAMPERED:[/] {escape(source)}: {len(report.problems):,} problem(s) in "
            f"{report.entries:,} entries",
            markup=True,
        )
        for p in report.problems:
            where = f"position {p.seq}" if p.seq is not None else "-"
            entry = f"entry {p.entry_id}" if p.entry_id is not None else ""
            err_console.print(
                f"  [red]{p.kind}[/] {where} {entry}: {escape(p.message)}",
                markup=True,
                soft_wrap=True,
            )


@app.command("verify")
@handle_errors
def verify(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Verify an export (JSON Lines) instead of the database."),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key", help="Check checkpoint signatures with this public key (PEM)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute every hash and link and check every signed checkpoint; say where the chain
    breaks, and how many entries at the end no signature covers yet. Exit 0: consistent (the
    text says whether every entry is signed); 1: tampered; 2: could not check.
    Example: amparo audit verify --file audit.jsonl --public-key audit.pub"""
    given = _public_key(public_key)
    if file is not None:
        with file.open(encoding="utf-8") as fh:
            report = chain.verify_export(fh, given)
        _print_report(report, as_json, str(file))
    else:
        with open_app(ctx) as amparo:
            key = given
            if key is None:
                path = audit_key_path(amparo.settings)
                if path.exists():
                    key = chain.AuditSigner(path, create=False).public_key
                elif not as_json:
                    err_console.print(
                        f"[yellow]warning:[/] no signing key at {escape(str(path))}: checkpoint "
                        "signatures are not checked (pass --public-key)",
                        markup=True,
                    )
            report = chain.verify_store(amparo.store.engine, key)
        _print_report(report, as_json, "audit log")
    if not report.ok:
        raise typer.Exit(EXIT_TAMPERED)


@app.command("export")
@handle_errors
def export(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
) -> None:
    """Export the whole chain as JSON Lines: every entry with its hashes, the signed checkpoints
    and the public key, for anyone to verify offline with `amparo audit verify --file`.
    Example: amparo audit export -o audit.jsonl"""
    with open_app(ctx) as amparo:
        amparo.store.configure_audit(amparo.settings)
        signer = chain.AuditSigner(audit_key_path(amparo.settings))
        lines = chain.export_lines(amparo.store.engine, signer.public_key)
        if output is None:
            for line in lines:
                sys.stdout.write(line)
            return
        tmp = output.with_name(f".{output.name}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.writelines(lines)
        tmp.replace(output)
    err_console.print(f"exported the audit log to {output}", markup=False)


@app.command("checkpoint")
@handle_errors
def checkpoint(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Sign a checkpoint of the chain's head now (also done every audit_checkpoint_every
    entries). Example: amparo audit checkpoint"""
    with open_app(ctx) as amparo:
        signer = chain.AuditSigner(audit_key_path(amparo.settings))
        cp = chain.checkpoint(amparo.store.engine, signer)
    if cp is None:
        raise InputError("the audit log is empty", hint="there is nothing to checkpoint yet")
    if as_json:
        emit_json(cp.to_json())
    else:
        err_console.print(
            f"signed checkpoint {cp.id} at position {cp.seq} (hash {cp.hash[:16]})", markup=False
        )


@app.command("public-key")
@handle_errors
def public_key_command(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
) -> None:
    """Print the public key that verifies checkpoint signatures (created with the signing
    key on first use). Give it to auditors out of band. Example: amparo audit public-key"""
    with open_app(ctx) as amparo:
        signer = chain.AuditSigner(audit_key_path(amparo.settings))
        pem = chain.public_key_pem(signer.public_key)
        kid = chain.key_id(signer.public_key)
    if output is None:
        sys.stdout.write(pem)
    else:
        output.write_text(pem, encoding="utf-8")
    err_console.print(f"key id {kid}", markup=False)


@app.command("list")
@handle_errors
def list_entries(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many.")] = 50,
    target: Annotated[str | None, typer.Option(help="Only entries about this target.")] = None,
    action: Annotated[str | None, typer.Option(help="Only entries of this action.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The newest audit entries first. Example: amparo audit list --target report:3"""
    with open_app(ctx) as amparo:
        entries = amparo.store.audit_log.entries(limit, target, action=action)
    if as_json:
        for e in entries:
            emit_json(e.__dict__)
        return
    table = Table("seq", "at", "actor", "action", "target", "hash")
    for e in entries:
        table.add_row(
            str(e.seq),
            e.at.isoformat(timespec="seconds"),
            e.actor,
            e.action,
            e.target,
            e.hash[:12],
        )
    Console().print(table)
