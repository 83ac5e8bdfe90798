"""``amparo bank ...``: create, list, show, import, export, add, remove, enable, disable, set,
delete; and the share-back ``proposals``, ``approve``, ``reject`` from
:mod:`amparo.cli.proposals`."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table

from amparo.banks.formats import CATEGORY_MAPS, FORMATS, detect_format, sniff_stream
from amparo.banks.model import BankInfo, EntryRecord
from amparo.banks.service import ImportReport
from amparo.cli import proposals
from amparo.cli.context import emit_json, err_console, handle_errors, open_app
from amparo.errors import InputError
from amparo.hashing import MediaHashes
from amparo.signals import get_signal_type

app = typer.Typer(
    help="Manage banks: named hash lists with provenance.\n\nExample: amparo bank create known "
    "--source 'hotline export' && amparo bank import known list.csv",
    no_args_is_help=True,
)

BankArg = Annotated[str, typer.Argument(help="Bank name.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _bank_json(b: BankInfo) -> dict[str, object]:
    return {
        "name": b.name,
        "description": b.description,
        "source": b.source,
        "supplier": b.supplier,
        "terms": b.terms,
        "enabled": b.enabled,
        "pdq_threshold": b.pdq_threshold,
        "dihedral": b.dihedral,
        "kind": b.kind,
        "entries": b.entry_count,
        "created_at": b.created_at,
        "imported_at": b.imported_at,
    }


@app.command("create")
@handle_errors
def create(
    ctx: typer.Context,
    name: BankArg,
    description: Annotated[str, typer.Option(help="What the list is.")] = "",
    source: Annotated[str, typer.Option(help="Where it comes from.")] = "",
    supplier: Annotated[str, typer.Option(help="Who supplied it.")] = "",
    terms: Annotated[str, typer.Option(help="Terms of use.")] = "",
    pdq_threshold: Annotated[
        int | None, typer.Option(help="PDQ match distance for this bank (default 31).")
    ] = None,
    dihedral: Annotated[
        bool, typer.Option("--dihedral", help="Also match rotated and mirrored copies.")
    ] = False,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    negative: Annotated[
        bool,
        typer.Option(
            "--negative",
            help="A known-benign bank: its matches suppress the query's other matches.",
        ),
    ] = False,
) -> None:
    """Create an empty bank. Example: amparo bank create known --source 'hotline X'

    A negative bank (--negative) lists known-benign content that keeps being mistaken for a
    match: a query matching it is never a find. Example: amparo bank create benign --negative"""
    with open_app(ctx) as amparo:
        bank = amparo.banks.create(
            BankInfo(
                name=name,
                description=description,
                source=source,
                supplier=supplier,
                terms=terms,
                pdq_threshold=pdq_threshold,
                dihedral=dihedral,
                enabled=not disabled,
                kind="negative" if negative else "positive",
            )
        )
    kind = " (negative: known benign)" if bank.kind == "negative" else ""
    err_console.print(f"created bank {bank.name}{kind}", markup=False)


@app.command("list")
@handle_errors
def list_banks(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List banks with their entry counts. Example: amparo bank list --json"""
    with open_app(ctx) as amparo:
        banks = amparo.banks.list()
    if as_json:
        for b in banks:
            emit_json(_bank_json(b))
        return
    table = Table("name", "kind", "entries", "enabled", "pdq threshold", "dihedral", "source")
    for b in banks:
        table.add_row(
            b.name,
            b.kind,
            f"{b.entry_count:,}",
            "yes" if b.enabled else "no",
            str(b.pdq_threshold if b.pdq_threshold is not None else "default"),
            "yes" if b.dihedral else "no",
            b.source,
        )
    Console().print(table)


@app.command("show")
@handle_errors
def show(ctx: typer.Context, name: BankArg) -> None:
    """Show one bank's settings and provenance as JSON. Example: amparo bank show known"""
    with open_app(ctx) as amparo:
        emit_json(_bank_json(amparo.banks.get(name)))


@app.command("import")
@handle_errors
def import_(
    ctx: typer.Context,
    name: BankArg,
    file: Annotated[Path, typer.Argument(help="Hash-list file, or - for stdin.")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)} (default: detect)."),
    ] = None,
    signal_type: Annotated[
        str | None, typer.Option("--type", "-t", help="Signal type for plain-text lists.")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail (and change nothing) on the first bad line.")
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Remove entries that are not in the file.")
    ] = False,
    category_map: Annotated[
        str | None,
        typer.Option(help=f"VICS category numbering: {', '.join(CATEGORY_MAPS)}."),
    ] = None,
    create: Annotated[bool, typer.Option("--create", help="Create the bank if needed.")] = False,
) -> None:
    """Import a hash list (all or nothing). Example: amparo bank import known list.csv

    Exit status: 0 every entry was read; 1 the valid entries were imported but some bad
    lines were skipped (listed above the summary); 2 nothing was imported (no valid entry,
    a --strict failure, or another error)."""
    with open_app(ctx) as amparo:
        if create and name not in {b.name for b in amparo.banks.list()}:
            amparo.banks.create(BankInfo(name=name, source=str(file)))
        stream: TextIO
        stdin: io.TextIOWrapper | None = None
        if str(file) == "-":  # read as it is imported, like a file: never held whole
            # Decoded as a file is (UTF-8, a BOM dropped): bytes that are not UTF-8 get the
            # same clear error, not the locale's surrogate escapes.
            stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
            sniffed, stream = sniff_stream(stdin)
            fmt = fmt or sniffed
            source = "stdin"
        else:
            if not file.is_file():
                raise InputError(f"{file} is not a readable file")
            fmt = fmt or detect_format(file)
            stream = file.open("r", encoding="utf-8-sig", newline="")
            source = str(file)
        try:
            report = amparo.banks.import_entries(
                name,
                stream,
                fmt,
                signal_type=signal_type,
                strict=strict,
                category_map=category_map,
                replace=replace,
                source_name=source,
            )
        finally:
            stream.close()
            if stdin is not None:
                stdin.detach()  # stdin's own buffer stays open
    for line_no, message in report.problems:
        err_console.print(f"{source}:{line_no}: {message}", markup=False)
    if report.problem_count > len(report.problems):
        err_console.print(f"... and {report.problem_count - len(report.problems)} more problems")
    for warning in report.warnings:
        err_console.print(f"warning: {warning}", markup=False)
    skipped = f"{report.problem_count:,} bad entries skipped"
    if report.problems:
        first_no, first = report.problems[0]
        skipped += f" (first at {first_no}: {first})"
    err_console.print(
        f"{name}: read {report.read:,} entries ({fmt}); added {report.added:,}, "
        f"updated {report.updated:,}, removed {report.removed:,}; {skipped}",
        markup=False,
    )
    if report.problem_count:
        raise typer.Exit(1)  # imported, but not all of it: a script must be able to tell


@app.command("export")
@handle_errors
def export(
    ctx: typer.Context,
    name: BankArg,
    file: Annotated[Path, typer.Argument(help="Output file, or - for stdout.")] = Path("-"),
    fmt: Annotated[str, typer.Option("--format", "-f", help=", ".join(FORMATS))] = "csv",
    category_map: Annotated[str | None, typer.Option(help="VICS category numbering.")] = None,
) -> None:
    """Export a bank (curators only: hash lists are sensitive). Example: amparo bank export
    known known.csv"""
    with open_app(ctx) as amparo:
        if str(file) == "-":
            count = amparo.banks.export_entries(name, sys.stdout, fmt, category_map=category_map)
        else:
            tmp = file.with_name(file.name + ".partial")
            with tmp.open("w", encoding="utf-8", newline="") as out:
                count = amparo.banks.export_entries(name, out, fmt, category_map=category_map)
            tmp.replace(file)
    err_console.print(f"exported {count:,} entries from {name}", markup=False)


def _media_added_json(item: str, hashes: MediaHashes, report: ImportReport) -> dict[str, object]:
    """What ``bank add`` wrote for one file: only the entries added, and why others were not
    (a vPDQ is shown by its frames, not its long compact form)."""
    added: dict[str, object] = {}
    for signal_type, value in report.signals.items():
        if get_signal_type(signal_type).long_value:
            video = hashes.video or {}
            added[signal_type] = {
                "frames": video.get("frames"),
                "sample_fps": video.get("sample_fps"),
                "duration_seconds": video.get("duration_seconds"),
            }
        else:
            added[signal_type] = value
    out: dict[str, object] = {"path": item, "media_type": hashes.media_type, "added": added}
    if report.not_added:
        out["not_added"] = report.not_added
    if report.variants:  # a photo's crop variants, stored with its PDQ entry
        out["variants"] = report.variants
    return out


def _parse_signals(values: list[str], signal_type: str | None) -> list[tuple[str, str]]:
    out = []
    for value in values:
        if ":" in value and not signal_type:
            stype, _, hash_value = value.partition(":")
        else:
            stype, hash_value = signal_type or _guess(value), value
        out.append((stype, hash_value))
    return out


def _guess(value: str) -> str:
    by_length = {32: "md5", 40: "sha1"}
    if len(value.strip()) in by_length:
        return by_length[len(value.strip())]
    raise InputError(
        f"cannot tell the signal type of {value[:70]!r}",
        hint="write it as TYPE:HASH (e.g. pdq:...) or pass --type",
    )


SignalsArg = Annotated[
    list[str], typer.Argument(help="Hashes as TYPE:HASH, or bare with --type.", show_default=False)
]
TypeOpt = Annotated[str | None, typer.Option("--type", "-t", help="pdq, md5, sha1 or sha256.")]


@app.command("add")
@handle_errors
def add(
    ctx: typer.Context,
    name: BankArg,
    items: Annotated[
        list[str],
        typer.Argument(help="Media files, or hashes as TYPE:HASH.", show_default=False),
    ],
    signal_type: TypeOpt = None,
    category: Annotated[str | None, typer.Option(help="Category of these entries.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag (repeatable).")] = None,
    note: Annotated[str | None, typer.Option(help="Note.")] = None,
) -> None:
    """Add media files (hashed: PDQ + MD5) or hashes. Example: amparo bank add known a.jpg
    md5:0cc175b9c0f1b6a831c399e269772661

    Prints a JSON line per file with what was written to the bank ("added": a photo's pdq
    and md5; a video's vpdq as its frame count, md5 and sha256), under "variants" the crop
    variants stored with a photo's pdq (bank_crop_variants) and, under "not_added", why a
    perceptual hash was left out (a flat photo's PDQ below pdq_min_quality)."""
    with open_app(ctx) as amparo:
        records: list[EntryRecord] = []
        for item in items:
            path = Path(item)
            if path.is_file():
                hashes, report = amparo.banks.add_media(
                    name, path.read_bytes(), category=category, tags=tag or [], note=note
                )
                emit_json(_media_added_json(item, hashes, report))
                continue
            for stype, value in _parse_signals([item], signal_type):
                records.append(
                    EntryRecord(stype, value, category=category, tags=tag or [], note=note)
                )
        if records:
            report = amparo.banks.add_entries(name, records)
            err_console.print(
                f"{name}: added {report.added}, updated {report.updated}", markup=False
            )


@app.command("remove")
@handle_errors
def remove(
    ctx: typer.Context, name: BankArg, signals: SignalsArg, signal_type: TypeOpt = None
) -> None:
    """Remove hashes from a bank. Example: amparo bank remove known pdq:f8f8...22"""
    with open_app(ctx) as amparo:
        count = amparo.banks.remove_signals(name, _parse_signals(signals, signal_type))
    err_console.print(f"{name}: removed {count}", markup=False)


def _set_enabled(
    ctx: typer.Context, name: str, signals: list[str] | None, st: str | None, on: bool
) -> None:
    with open_app(ctx) as amparo:
        if signals:
            count = amparo.banks.set_signals_enabled(name, _parse_signals(signals, st), on)
            err_console.print(f"{name}: {'enabled' if on else 'disabled'} {count}", markup=False)
        else:
            amparo.banks.update(name, enabled=on)
            err_console.print(f"bank {name} {'enabled' if on else 'disabled'}", markup=False)


OptSignalsArg = Annotated[
    list[str] | None,
    typer.Argument(help="Entries as TYPE:HASH; none means the whole bank.", show_default=False),
]


@app.command("enable")
@handle_errors
def enable(
    ctx: typer.Context, name: BankArg, signals: OptSignalsArg = None, signal_type: TypeOpt = None
) -> None:
    """Enable a bank, or some of its entries. Example: amparo bank enable known"""
    _set_enabled(ctx, name, signals, signal_type, True)


@app.command("disable")
@handle_errors
def disable(
    ctx: typer.Context, name: BankArg, signals: OptSignalsArg = None, signal_type: TypeOpt = None
) -> None:
    """Disable a bank, or some of its entries (kept, not matched). Example: amparo bank
    disable known"""
    _set_enabled(ctx, name, signals, signal_type, False)


@app.command("set")
@handle_errors
def set_(
    ctx: typer.Context,
    name: BankArg,
    pdq_threshold: Annotated[int | None, typer.Option(help="PDQ match distance.")] = None,
    dihedral: Annotated[
        bool | None, typer.Option("--dihedral/--no-dihedral", help="Rotation/flip matching.")
    ] = None,
    description: Annotated[str | None, typer.Option()] = None,
    source: Annotated[str | None, typer.Option()] = None,
    supplier: Annotated[str | None, typer.Option()] = None,
    terms: Annotated[str | None, typer.Option()] = None,
    negative: Annotated[
        bool | None,
        typer.Option("--negative/--positive", help="Known-benign (negative) or known (positive)."),
    ] = None,
) -> None:
    """Change a bank's settings. Example: amparo bank set known --pdq-threshold 24"""
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "pdq_threshold": pdq_threshold,
            "dihedral": dihedral,
            "description": description,
            "source": source,
            "supplier": supplier,
            "terms": terms,
            "kind": None if negative is None else ("negative" if negative else "positive"),
        }.items()
        if v is not None
    }
    if not changes:
        raise InputError("nothing to change", hint="see `amparo bank set --help`")
    with open_app(ctx) as amparo:
        emit_json(_bank_json(amparo.banks.update(name, **changes)))


@app.command("delete")
@handle_errors
def delete(
    ctx: typer.Context,
    name: BankArg,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete a bank and all its entries. Example: amparo bank delete old --yes"""
    if not yes and not typer.confirm(f"delete bank {name} and all its entries?", err=True):
        raise typer.Exit(1)
    with open_app(ctx) as amparo:
        amparo.banks.delete(name)
    err_console.print(f"deleted bank {name}", markup=False)


# The share-back commands (`bank proposals|approve|reject`) live in their own module and are
# registered here, at the end, so `amparo bank` lists them after the bank commands as before.
# This module imports that one (never the reverse): no import cycle.
proposals.register(app)
