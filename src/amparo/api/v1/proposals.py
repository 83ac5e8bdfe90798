"""v1: share-back proposals. A reviewer (or curator) proposes a confirmed case item to an
outgoing bank; a curator approves it (its hashes are added to the bank, with provenance) or
rejects it. Errors are the usual JSON with a hint: 404 for an unknown item, bank or proposal,
409 for an item not confirmed, a proposal already pending or already decided, 400 for a
negative bank or a malformed jurisdiction."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from amparo.api.auth import CURATE, requires
from amparo.api.service import Service, get_service
from amparo.exchanges.proposals import Proposal
from amparo.keys import ApiKey

router = APIRouter(tags=["v1: proposals"])

PROPOSE = ("reviewer", "curator")
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]


class ProposalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bank: str = Field(min_length=1, max_length=200, description="The outgoing bank.")
    note: str | None = Field(default=None, max_length=4000, description="For the curator.")
    jurisdiction: str | None = Field(
        default=None,
        max_length=8,
        description="ISO 3166 code the item was assessed under (MX, BR) or INT.",
    )


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=4000)


class ProposalOut(BaseModel):
    id: int
    item_id: int
    bank: str
    state: str
    proposed_by: str
    proposed_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    note: str | None
    jurisdiction: str | None
    entries: list[list[str]] = Field(
        description="On approval: the [signal type, signal] pairs added to the bank."
    )

    @classmethod
    def of(cls, p: Proposal) -> ProposalOut:
        return cls(**p.to_json())


@router.post(
    "/review/items/{item_id}/proposals",
    response_model=ProposalOut,
    status_code=201,
    summary="Propose a confirmed item to an outgoing bank",
)
def propose(
    item_id: Id,
    body: ProposalIn,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*PROPOSE)),
) -> ProposalOut:
    """Only an item whose latest decision is ``confirm``; nothing is published until a
    curator approves. One pending proposal per item and bank (409 otherwise)."""
    proposal = service.amparo.proposals.propose(
        item_id, body.bank, actor=key.actor, note=body.note, jurisdiction=body.jurisdiction
    )
    return ProposalOut.of(proposal)


@router.get("/proposals", response_model=list[ProposalOut], summary="Share-back proposals")
def list_proposals(
    state: Annotated[Literal["pending", "approved", "rejected", "all"], Query()] = "pending",
    bank: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*CURATE)),
) -> list[ProposalOut]:
    """Oldest first: the curator's queue (``pending``, the default) or its history."""
    found = service.amparo.proposals.list(state=state, bank=bank, limit=limit)
    return [ProposalOut.of(p) for p in found]


@router.get("/proposals/{proposal_id}", response_model=ProposalOut, summary="One proposal")
def show_proposal(
    proposal_id: Id,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*CURATE)),
) -> ProposalOut:
    return ProposalOut.of(service.amparo.proposals.get(proposal_id))


@router.post(
    "/proposals/{proposal_id}/approve",
    response_model=ProposalOut,
    summary="Approve a proposal: publish the item's hashes to the bank",
)
def approve(
    proposal_id: Id,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> ProposalOut:
    """Adds the item's SHA-256, MD5 and matched PDQ (see docs/exchanges.md, "Share-back proposals")
    with this organisation's provenance; 409 when it is no longer pending or the item is no
    longer confirmed."""
    return ProposalOut.of(service.amparo.proposals.approve(proposal_id, actor=key.actor))


@router.post(
    "/proposals/{proposal_id}/reject", response_model=ProposalOut, summary="Reject a proposal"
)
def reject(
    proposal_id: Id,
    body: RejectIn | None = None,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> ProposalOut:
    reason = body.reason if body is not None else None
    proposal = service.amparo.proposals.reject(proposal_id, actor=key.actor, reason=reason)
    return ProposalOut.of(proposal)
