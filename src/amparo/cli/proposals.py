"""``amparo bank proposals|approve|reject``: the curator's side of share-back.

Confirmed items proposed for sharing wait here until a curator approves (their hashes go into
the bank, with provenance) or rejects them. The commands belong to the ``bank`` group:
:func:`register` adds them to it, called by :mod:`amparo.cli.bank` so this module never
imports that one (no import cycle). Every command calls
:class:`amparo.exchanges.proposals.ProposalService` only.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from amparo.cli.context import ID_MAX, emit_json, err_console, handle_errors, open_app
from amparo.config import LOCAL_ACTOR

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ProposalArg = Annotated[
    int, typer.Argument(help="Proposal id (see `bank proposals`).", min=1, max=ID_MAX)
]
CuratorOpt = Annotated[str, typer.Option("--actor", help="Who decides (audited).")]


@handle_errors
def proposals(
    ctx: typer.Context,
    bank: Annotated[str | None, typer.Argument(help="Only this bank.", show_default=False)] = None,
    state: Annotated[str, typer.Option(help="pending, approved, rejected or all.")] = "pending",
    as_json: JsonOpt = False,
) -> None:
    """Confirmed items proposed for sharing, oldest first. Example: amparo bank proposals"""
    with open_app(ctx) as amparo:
        found = amparo.proposals.list(state=state, bank=bank)
    if as_json:
        for p in found:
            emit_json(p.to_json())
        return
    table = Table("id", "item", "bank", "state", "proposed by", "at", "jurisdiction", "note")
    for p in found:
        table.add_row(
            str(p.id),
            str(p.item_id),
            p.bank,
            p.state,
            p.proposed_by,
            p.proposed_at.isoformat(timespec="seconds"),
            p.jurisdiction or "",
            p.note or p.reason or "",
        )
    Console().print(table)


@handle_errors
def approve(ctx: typer.Context, proposal_id: ProposalArg, actor: CuratorOpt = LOCAL_ACTOR) -> None:
    """Approve a proposal: the item's hashes are added to its bank, with provenance.
    Example: amparo bank approve 3"""
    with open_app(ctx) as amparo:
        p = amparo.proposals.approve(proposal_id, actor=actor)
    err_console.print(
        f"proposal {p.id} approved: {len(p.entries)} "
        f"{'entry' if len(p.entries) == 1 else 'entries'} added to {p.bank}",
        markup=False,
    )


@handle_errors
def reject(
    ctx: typer.Context,
    proposal_id: ProposalArg,
    reason: Annotated[str | None, typer.Option(help="Why (kept and audited).")] = None,
    actor: CuratorOpt = LOCAL_ACTOR,
) -> None:
    """Reject a proposal; nothing is published. Example: amparo bank reject 3 --reason dup"""
    with open_app(ctx) as amparo:
        p = amparo.proposals.reject(proposal_id, actor=actor, reason=reason)
    err_console.print(f"proposal {p.id} rejected", markup=False)


def register(app: typer.Typer) -> None:
    """Add the share-back commands to the ``bank`` group, in the order ``bank --help`` lists
    them."""
    app.command("proposals")(proposals)
    app.command("approve")(approve)
    app.command("reject")(reject)
