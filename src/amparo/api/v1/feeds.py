"""v1: federation feeds. Curators publish banks as feeds and grant them to partner keys;
partner keys read the signed pages of the feeds granted to them and post opinions back.

A partner key asking for a feed it holds no grant to gets 403 whether the feed exists or
not (partners cannot probe for feed names); a curator gets 404 for a feed that does not
exist. The page format: :mod:`amparo.exchanges.feeds` and docs/exchanges.md (Federation).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from amparo.api.auth import CURATE, requires
from amparo.api.service import Service, get_service
from amparo.exchanges.feed_model import Feed, FeedOpinion, Grant, OpinionCount
from amparo.keys import ApiKey

router = APIRouter(prefix="/feeds", tags=["v1: feeds"])

PARTNER = ("partner",)
READ_FEEDS = ("curator", "partner")
FeedName = Annotated[str, Path(min_length=1, max_length=100)]
KeyName = Annotated[str, Path(min_length=1, max_length=100)]


def _partner(key: ApiKey) -> str | None:
    """The key name a partner reads under; None for a curator (or admin): every feed."""
    return None if key.allows(*CURATE) else key.name


class GrantOut(BaseModel):
    key: str
    granted_at: datetime
    partner_key_pinned: bool
    ack_cursor: str | None
    acked_at: datetime | None
    revoked_at: datetime | None
    unacknowledged_withdrawals: int

    @classmethod
    def of(cls, g: Grant) -> GrantOut:
        return cls(
            key=g.key_name,
            granted_at=g.granted_at,
            partner_key_pinned=g.partner_public_key is not None,
            ack_cursor=g.ack_cursor,
            acked_at=g.acked_at,
            revoked_at=g.revoked_at,
            unacknowledged_withdrawals=g.unacknowledged_withdrawals,
        )


class FeedOut(BaseModel):
    name: str
    bank: str
    description: str
    created_at: datetime
    publisher: str
    key_id: str
    grants: list[GrantOut]


class FeedIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    bank: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)


class GrantIn(BaseModel):
    key: str = Field(min_length=1, max_length=100, description="The partner API key's name.")
    public_key: str | None = Field(
        default=None,
        max_length=4000,
        description="PEM of the partner's feed key (its `amparo feeds key`): pins what its "
        "opinions must be signed with.",
    )


class WithdrawIn(BaseModel):
    entry_ids: list[int] = Field(min_length=1, max_length=10_000)


class OpinionOut(BaseModel):
    feed: str
    entry_id: int
    key: str
    partner: str
    verdict: str
    reason: str | None
    at: str
    received_at: datetime
    verified: bool

    @classmethod
    def of(cls, o: FeedOpinion) -> OpinionOut:
        return cls(
            feed=o.feed,
            entry_id=o.entry_id,
            key=o.key_name,
            partner=o.partner,
            verdict=o.verdict,
            reason=o.reason,
            at=o.at,
            received_at=o.received_at,
            verified=o.verified,
        )


class OpinionCountOut(BaseModel):
    entry_id: int
    signal_type: str | None
    true_positive: int
    false_positive: int
    partners: dict[str, str]

    @classmethod
    def of(cls, c: OpinionCount) -> OpinionCountOut:
        return cls(
            entry_id=c.entry_id,
            signal_type=c.signal_type,
            true_positive=c.true_positive,
            false_positive=c.false_positive,
            partners=c.partners,
        )


def _feed_out(service: Service, feed: Feed) -> FeedOut:
    feeds = service.amparo.feeds
    return FeedOut(
        name=feed.name,
        bank=feed.bank,
        description=feed.description,
        created_at=feed.created_at,
        publisher=feeds.organisation,
        key_id=feeds.key_id(),
        grants=[GrantOut.of(g) for g in feed.grants],
    )


@router.get("", response_model=list[FeedOut], summary="List feeds (a partner: those granted)")
def list_feeds(
    service: Service = Depends(get_service), key: ApiKey = Depends(requires(*READ_FEEDS))
) -> list[FeedOut]:
    return [_feed_out(service, f) for f in service.amparo.feeds.list(partner=_partner(key))]


@router.post("", response_model=FeedOut, status_code=201, summary="Publish a bank as a feed")
def publish_feed(
    body: FeedIn, service: Service = Depends(get_service), key: ApiKey = Depends(requires(*CURATE))
) -> FeedOut:
    feed = service.amparo.feeds.publish(
        body.name, body.bank, description=body.description, actor=key.actor
    )
    return _feed_out(service, feed)


@router.get("/key", summary="The publisher's feed public key (PEM) to pin")
def feed_key(
    service: Service = Depends(get_service), _key: ApiKey = Depends(requires(*READ_FEEDS))
) -> dict[str, str]:
    feeds = service.amparo.feeds
    return {
        "publisher": feeds.organisation,
        "key_id": feeds.key_id(),
        "public_key": feeds.public_key(),
    }


@router.get("/{name}/status", response_model=FeedOut, summary="Show a feed, its grants and acks")
def show_feed(
    name: FeedName,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*CURATE)),
) -> FeedOut:
    return _feed_out(service, service.amparo.feeds.show(name))


@router.delete("/{name}", status_code=204, summary="Stop publishing a feed")
def unpublish_feed(
    name: FeedName,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> Response:
    service.amparo.feeds.unpublish(name, actor=key.actor)
    return Response(status_code=204)


@router.post(
    "/{name}/grants", response_model=GrantOut, status_code=201, summary="Grant to a partner key"
)
def grant_feed(
    name: FeedName,
    body: GrantIn,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> GrantOut:
    grant = service.amparo.feeds.grant(name, body.key, public_key=body.public_key, actor=key.actor)
    return GrantOut.of(grant)


@router.delete("/{name}/grants/{key_name}", status_code=204, summary="Revoke a grant")
def revoke_grant(
    name: FeedName,
    key_name: KeyName,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> Response:
    service.amparo.feeds.revoke(name, key_name, actor=key.actor)
    return Response(status_code=204)


@router.post("/{name}/withdraw", summary="Withdraw entries (removed from the bank)")
def withdraw(
    name: FeedName,
    body: WithdrawIn,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> dict[str, int]:
    return {"removed": service.amparo.feeds.withdraw(name, body.entry_ids, actor=key.actor)}


@router.get(
    "/{name}",
    summary="The feed: a signed page of its bank's change log after a cursor",
    responses={200: {"description": '{"page": {...}, "signature": "<base64 Ed25519>"}'}},
)
async def feed_entries(
    name: FeedName,
    nonce: Annotated[str, Query(min_length=1, max_length=200)],
    cursor: Annotated[str | None, Query(max_length=60)] = None,
    limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    ack: Annotated[str | None, Query(max_length=60)] = None,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*READ_FEEDS)),
) -> Response:
    page = await run_in_threadpool(
        service.amparo.feeds.page,
        name,
        cursor=cursor,
        nonce=nonce,
        limit=limit,
        ack=ack,
        partner=_partner(key),
    )
    return Response(content=page.body(), media_type="application/json")


@router.post(
    "/{name}/opinions",
    response_model=OpinionOut,
    status_code=201,
    summary="A partner's signed opinion on an entry",
)
def post_opinion(
    name: FeedName,
    body: Annotated[dict[str, Any], Body()],
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*PARTNER)),
) -> OpinionOut:
    opinion = service.amparo.feeds.receive_opinion(name, body, partner=key.name, actor=key.actor)
    return OpinionOut.of(opinion)


@router.get(
    "/{name}/opinions",
    response_model=list[OpinionCountOut],
    summary="Partners' opinions per entry (most false positives first)",
)
def opinion_counts(
    name: FeedName,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*CURATE)),
) -> list[OpinionCountOut]:
    return [OpinionCountOut.of(c) for c in service.amparo.feeds.opinion_counts(name)]
