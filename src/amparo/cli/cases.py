"""``amparo cases ...``: the review queue, one case, decisions, entries disabled after false
positives. Media is never printed: reviewers look at it (shielded) in the web UI at /review."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from amparo.cli.context import ID_MAX, emit_json, err_console, handle_errors, open_app
from amparo.config import LOCAL_ACTOR
from amparo.review.cases import CLASSIFICATIONS, DECISION_KINDS, QUEUE_STATUSES, CaseView

app = typer.Typer(
    help="Review cases: list the queue, show a case, decide, handle entries disabled after "
    "false positives.\n\nExample: amparo cases list && amparo cases decide 12 confirm "
    "--classification A2 --reviewer rita",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")]


def _case_json(c: CaseView) -> dict[str, Any]:
    return {
        "id": c.id,
        "group": c.group,
        "status": c.status,
        "priority": c.priority,
        "rule": c.rule,
        "opened_at": c.opened_at,
        "updated_at": c.updated_at,
        "items": [
            {
                "id": i.id,
                "sha256": i.sha256,
                "md5": i.md5,
                "size": i.size,
                "media_kind": i.media_kind,
                "file_name": i.file_name,
                "source": i.source,
                "status": i.status,
                "sightings": i.sightings,
                "viewed": i.viewed,
                "evidence_id": i.evidence_id,
                "matches": [m.to_json() for m in i.matches],
                "decision": None
                if i.decision is None
                else {
                    "kind": i.decision.kind,
                    "classification": i.decision.classification,
                    "annotations": list(i.decision.annotations),
                    "note": i.decision.note,
                    "reviewer": i.decision.reviewer,
                    "at": i.decision.at,
                },
            }
            for i in c.items
        ],
    }


@app.command("list")
@handle_errors
def list_cases(
    ctx: typer.Context,
    status: Annotated[
        str, typer.Option(help=f"One of {', '.join(QUEUE_STATUSES)} (waiting: open+escalated).")
    ] = "waiting",
    limit: Annotated[int, typer.Option(min=1, max=500, help="Most cases to list.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The review queue, most urgent first. Example: amparo cases list --status escalated"""
    with open_app(ctx) as amparo:
        cases = amparo.cases.queue(status, limit=limit)
    if as_json:
        for c in cases:
            emit_json(_case_json(c))
        return
    table = Table("case", "status", "priority", "group", "items", "waiting", "categories")
    for c in cases:
        table.add_row(
            str(c.id),
            c.status,
            str(c.priority),
            c.group,
            str(len(c.items)),
            str(c.waiting),
            ", ".join(c.categories),
        )
    Console().print(table)


@app.command("show")
@handle_errors
def show(
    ctx: typer.Context, case_id: Annotated[int, typer.Argument(help="Case id.", min=1, max=ID_MAX)]
) -> None:
    """One case with its items, matches and decisions, as JSON. Example: amparo cases show 3"""
    with open_app(ctx) as amparo:
        emit_json(_case_json(amparo.cases.get(case_id)))


@app.command("decide")
@handle_errors
def decide(
    ctx: typer.Context,
    item_id: Annotated[
        int, typer.Argument(help="Case item id (see `cases show`).", min=1, max=ID_MAX)
    ],
    kind: Annotated[str, typer.Argument(help=f"One of {', '.join(DECISION_KINDS)}.")],
    classification: Annotated[
        str | None,
        typer.Option(help=f"For confirm: {', '.join(CLASSIFICATIONS)} (Tech Coalition)."),
    ] = None,
    annotation: Annotated[
        list[str] | None, typer.Option("--annotation", "-a", help="Repeatable.")
    ] = None,
    note: Annotated[str | None, typer.Option(help="A note for colleagues.")] = None,
    reviewer: Annotated[
        str, typer.Option(help="Who decides (recorded and audited).")
    ] = LOCAL_ACTOR,
) -> None:
    """Decide about one item. Example: amparo cases decide 12 false_positive --reviewer rita"""
    with open_app(ctx) as amparo:
        decision = amparo.cases.decide(
            item_id,
            kind,
            classification=classification,
            annotations=annotation or [],
            note=note,
            reviewer=reviewer,
        )
    label = decision.kind + (f" {decision.classification}" if decision.classification else "")
    err_console.print(f"item {item_id}: {label}", markup=False)


@app.command("undo")
@handle_errors
def undo(
    ctx: typer.Context,
    item_id: Annotated[
        int, typer.Argument(help="Case item id (see `cases show`).", min=1, max=ID_MAX)
    ],
    reviewer: Annotated[str, typer.Option(help="Who made the decision (audited).")] = LOCAL_ACTOR,
) -> None:
    """Take back your latest decision on an item within review_undo_seconds of it (a false
    positive's copy is kept). Example: amparo cases undo 12 --reviewer rita"""
    with open_app(ctx) as amparo:
        now = amparo.cases.undo(item_id, reviewer=reviewer)
    label = (now.kind + (f" {now.classification}" if now.classification else "")) if now else ""
    err_console.print(f"item {item_id}: undone; now {label or 'waiting for review'}", markup=False)


@app.command("disabled-entries")
@handle_errors
def disabled_entries(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Bank entries disabled after repeated false positives, waiting for a curator.
    Example: amparo cases disabled-entries --json"""
    with open_app(ctx) as amparo:
        entries = amparo.cases.disabled_entries()
    if as_json:
        for e in entries:
            emit_json(e.__dict__)
        return
    table = Table("entry", "bank", "type", "category", "false positives", "disabled at")
    for e in entries:
        table.add_row(
            str(e.entry_id),
            e.bank,
            e.signal_type,
            e.category or "",
            str(e.false_positives),
            e.disabled_at.isoformat(timespec="seconds"),
        )
    Console().print(table)


@app.command("reenable")
@handle_errors
def reenable(
    ctx: typer.Context,
    entry_id: Annotated[
        int, typer.Argument(help="Entry id (see `disabled-entries`).", min=1, max=ID_MAX)
    ],
    actor: Annotated[str, typer.Option(help="Who re-enables (audited).")] = LOCAL_ACTOR,
) -> None:
    """Re-enable an entry disabled after false positives (a curator looked: it is right).
    Example: amparo cases reenable 4711"""
    with open_app(ctx) as amparo:
        amparo.cases.reenable_entry(entry_id, actor=actor)
    err_console.print(f"entry {entry_id} enabled again", markup=False)


@app.command("propose")
@handle_errors
def propose(
    ctx: typer.Context,
    item_id: Annotated[
        int, typer.Argument(help="Case item id (see `cases show`).", min=1, max=ID_MAX)
    ],
    bank: Annotated[str, typer.Option("--bank", help="The outgoing bank.", show_default=False)],
    note: Annotated[str | None, typer.Option(help="A note for the curator.")] = None,
    jurisdiction: Annotated[
        str | None, typer.Option(help="ISO 3166 code it was assessed under (MX, BR) or INT.")
    ] = None,
    actor: Annotated[str, typer.Option(help="Who proposes (audited).")] = LOCAL_ACTOR,
    as_json: JsonOpt = False,
) -> None:
    """Propose a confirmed item to an outgoing bank; a curator approves it before anything
    is published (`amparo bank approve`). Example: amparo cases propose 12 --bank share"""
    with open_app(ctx) as amparo:
        proposal = amparo.proposals.propose(
            item_id, bank, actor=actor, note=note, jurisdiction=jurisdiction
        )
    if as_json:
        emit_json(proposal.to_json())
        return
    err_console.print(
        f"proposal {proposal.id}: item {item_id} to {bank}, waiting for a curator", markup=False
    )
