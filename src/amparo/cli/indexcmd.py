"""``amparo index ...``: status, verify, compact and rebuild the on-disk signal indexes."""

from __future__ import annotations

import resource
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from amparo.cli.context import emit_json, err_console, handle_errors, open_app

app = typer.Typer(
    help="The on-disk signal indexes (PDQ and digests), kept in step with the database.\n\n"
    "Example: amparo index status",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


@app.command("status")
@handle_errors
def status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Entries, segments, delta, tombstones, change-log position and memory of each index.
    Example: amparo index status --json"""
    with open_app(ctx) as amparo:
        matcher = amparo.matcher
        matcher.refresh()
        kinds = matcher.indexes.status()
        db_seq = amparo.store.changes.current_seq()
        directory = matcher.indexes.directory
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if as_json:
        emit_json(
            {
                "directory": str(directory),
                "database_position": db_seq,
                "process_max_rss_bytes": rss,
                "indexes": [k.__dict__ for k in kinds],
            }
        )
        return
    table = Table(
        "index", "entries", "segments", "delta", "tombstones", "position", "on disk", "mapped"
    )
    for k in kinds:
        table.add_row(
            k.kind,
            f"{k.entries:,}",
            str(k.segments),
            f"{k.delta_entries:,}",
            f"{k.tombstones:,}",
            f"{k.checkpoint:,}",
            _mib(k.bytes_on_disk),
            _mib(k.resident_bytes),
        )
    Console().print(table)
    Console().print(
        f"directory {directory}; database change-log position {db_seq:,}; "
        f"this process's peak memory {_mib(rss)}"
    )


@app.command("verify")
@handle_errors
def verify(ctx: typer.Context) -> None:
    """Compare every index with the database; exit 1 on any difference.
    Example: amparo index verify"""
    with open_app(ctx) as amparo:
        differences = amparo.matcher.indexes.verify()
    for d in differences:
        err_console.print(
            f"{d.kind}: {len(d.missing)} active entries missing from the index "
            f"(e.g. {d.missing[:5]}), {len(d.extra)} stale entries in it (e.g. {d.extra[:5]})",
            markup=False,
        )
    if differences:
        err_console.print("hint: run `amparo index rebuild`", markup=False)
        raise typer.Exit(1)
    err_console.print("indexes match the database", markup=False)


@app.command("compact")
@handle_errors
def compact(ctx: typer.Context) -> None:
    """Merge in-memory changes into new segment files. Example: amparo index compact"""
    with open_app(ctx) as amparo:
        amparo.matcher.refresh()
        done = amparo.matcher.indexes.compact()
    err_console.print("compacted" if done else "another process is compacting", markup=False)


@app.command("rebuild")
@handle_errors
def rebuild(ctx: typer.Context) -> None:
    """Rebuild every index from the database. Example: amparo index rebuild"""
    with open_app(ctx) as amparo:
        kinds = amparo.matcher.rebuild_indexes().status()
    err_console.print(
        "rebuilt: " + ", ".join(f"{k.kind} {k.entries:,}" for k in kinds), markup=False
    )
