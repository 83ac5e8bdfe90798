"""v1: action rules (versioned), webhook endpoints and their outbox, and the actions-taken log.

Changing rules and endpoints needs a curator (or admin) key; reading them, and the log of
actions taken, a curator or auditor key. See docs/actions.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from amparo.actions import Actioner, Deliverer, NewEndpoint, Rule
from amparo.actions.rules import MAX_LIST, MAX_PRIORITY
from amparo.actions.webhooks import check_endpoint_url
from amparo.api.auth import CURATE, READ_BANKS, requires
from amparo.api.schemas import MatchPath, Strict
from amparo.api.service import Service, get_service
from amparo.errors import InputError
from amparo.keys import ApiKey

router = APIRouter(tags=["v1: actions"])

Name = Annotated[str, Path(min_length=1, max_length=100)]
NameList = list[Annotated[str, Field(min_length=1, max_length=100)]]


class ConditionsIn(Strict):
    """All optional; a match must meet every condition given (one match of the find)."""

    banks: NameList | None = Field(default=None, max_length=MAX_LIST)
    categories: NameList | None = Field(default=None, max_length=MAX_LIST)
    signal_types: NameList | None = Field(default=None, max_length=MAX_LIST)
    max_distance: int | None = Field(default=None, ge=0, le=256)
    source_kinds: list[Literal["api", "scan", "cli", "retro"]] | None = None
    paths: list[MatchPath] | None = Field(
        default=None,
        description="How a match was found (docs/detection.md): plain, trimmed (borders or "
        "bars trimmed), variant (a stored crop), dihedral (mirrored or rotated).",
    )


class ActionIn(Strict):
    type: Literal["review", "webhook", "quarantine", "report"]
    endpoint: str | None = Field(default=None, max_length=100, description="webhook: endpoint.")
    mode: Literal["copy", "move"] | None = Field(default=None, description="quarantine mode.")


class RuleIn(Strict):
    name: str | None = Field(
        default=None, max_length=100, description="Taken from the path on PUT."
    )
    enabled: bool = True
    priority: int = Field(default=100, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    description: str = Field(default="", max_length=10_000)
    conditions: ConditionsIn = Field(default_factory=ConditionsIn)
    actions: list[ActionIn] = Field(min_length=1, max_length=20)

    def rule(self, name: str | None = None) -> Rule:
        data = self.model_dump(exclude_none=True)
        data["actions"] = [a.model_dump(exclude_none=True) for a in self.actions]
        return Rule.from_json(data, name=name)


class RuleOut(BaseModel):
    name: str
    version: int
    enabled: bool
    priority: int
    description: str
    conditions: dict[str, Any]
    actions: list[dict[str, Any]]
    created_at: datetime | None = None
    created_by: str | None = None
    deleted: bool = False

    @classmethod
    def of(cls, rule: Rule) -> RuleOut:
        return cls(**rule.to_json())


class EndpointIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    url: str = Field(min_length=1, max_length=2048)
    enabled: bool = True


class EndpointPatch(Strict):
    url: str | None = Field(default=None, max_length=2048)
    enabled: bool | None = None
    rotate_secret: bool = Field(default=False, description="Issue a new secret (shown once).")


class EndpointOut(BaseModel):
    name: str
    url: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(
        default=None, description="Only when created or rotated: store it, it is not shown again."
    )


class OutboxEventOut(BaseModel):
    id: int
    event_id: str
    endpoint: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    payload: dict[str, Any]


class DeliveryOut(BaseModel):
    event_id: str
    delivered: bool
    status: int | None
    error: str | None


class ActionRecordOut(BaseModel):
    id: int
    at: datetime
    actor: str
    rule: str
    rule_version: int
    action: str
    sha256: str
    source: dict[str, Any]
    outcome: str
    detail: dict[str, Any]
    error: str | None


def _actions(service: Service) -> Actioner:
    return service.amparo.actions


def _endpoint_out(value: Any) -> EndpointOut:
    if isinstance(value, NewEndpoint):
        return EndpointOut(**value.endpoint.to_json(), secret=value.secret)
    return EndpointOut(**value.to_json())


# -- rules ------------------------------------------------------------------------------------


@router.get("/rules", response_model=list[RuleOut], summary="List action rules")
def list_rules(
    service: Service = Depends(get_service), _key: ApiKey = Depends(requires(*READ_BANKS))
) -> list[RuleOut]:
    return [RuleOut.of(r) for r in _actions(service).list_rules()]


@router.post("/rules", response_model=RuleOut, status_code=201, summary="Add an action rule")
def add_rule(
    body: RuleIn, service: Service = Depends(get_service), key: ApiKey = Depends(requires(*CURATE))
) -> RuleOut:
    if body.name is None:
        raise InputError("a new rule needs a name")
    return RuleOut.of(_actions(service).add_rule(body.rule(), actor=key.actor))


@router.get("/rules/{name}", response_model=RuleOut, summary="Show a rule (or one version)")
def get_rule(
    name: Name,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*READ_BANKS)),
) -> RuleOut:
    return RuleOut.of(_actions(service).get_rule(name, version))


@router.put("/rules/{name}", response_model=RuleOut, summary="Change a rule (a new version)")
def set_rule(
    name: Name,
    body: RuleIn,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> RuleOut:
    if body.name is not None and body.name != name:
        raise InputError("the rule's name in the body differs from the path; rules keep names")
    return RuleOut.of(_actions(service).set_rule(body.rule(name), actor=key.actor))


@router.delete("/rules/{name}", response_model=RuleOut, summary="Remove a rule (history stays)")
def remove_rule(
    name: Name, service: Service = Depends(get_service), key: ApiKey = Depends(requires(*CURATE))
) -> RuleOut:
    return RuleOut.of(_actions(service).remove_rule(name, actor=key.actor))


@router.get("/rules/{name}/history", response_model=list[RuleOut], summary="Every version")
def rule_history(
    name: Name,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*READ_BANKS)),
) -> list[RuleOut]:
    return [RuleOut.of(r) for r in _actions(service).rule_history(name)]


# -- webhooks ---------------------------------------------------------------------------------


@router.get("/webhooks", response_model=list[EndpointOut], summary="List webhook endpoints")
def list_endpoints(
    service: Service = Depends(get_service), _key: ApiKey = Depends(requires(*READ_BANKS))
) -> list[EndpointOut]:
    return [_endpoint_out(e) for e in _actions(service).outbox.list_endpoints()]


@router.post(
    "/webhooks", response_model=EndpointOut, status_code=201, summary="Add a webhook endpoint"
)
def add_endpoint(
    body: EndpointIn,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> EndpointOut:
    check_endpoint_url(body.url, service.fetcher.policy)
    new = _actions(service).outbox.add_endpoint(
        body.name, body.url, enabled=body.enabled, actor=key.actor
    )
    return _endpoint_out(new)


@router.get("/webhooks/outbox", response_model=list[OutboxEventOut], summary="Outbox events")
def outbox(
    state: Literal["pending", "delivered", "dead"] | None = None,
    endpoint: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*CURATE)),
) -> list[OutboxEventOut]:
    events = _actions(service).outbox.events(state=state, endpoint=endpoint, limit=limit)
    return [OutboxEventOut(**e.to_json()) for e in events]


@router.post(
    "/webhooks/outbox/{event}/retry",
    response_model=OutboxEventOut,
    summary="Send an outbox event again (a dead one gets fresh attempts)",
)
def retry_event(
    event: Annotated[str, Path(min_length=1, max_length=36)],
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> OutboxEventOut:
    return OutboxEventOut(**_actions(service).outbox.retry(event, actor=key.actor).to_json())


@router.get("/webhooks/{name}", response_model=EndpointOut, summary="Show a webhook endpoint")
def get_endpoint(
    name: Name,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*READ_BANKS)),
) -> EndpointOut:
    return _endpoint_out(_actions(service).outbox.get_endpoint(name))


@router.patch("/webhooks/{name}", response_model=EndpointOut, summary="Change an endpoint")
def update_endpoint(
    name: Name,
    body: EndpointPatch,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> EndpointOut:
    if body.url is not None:
        check_endpoint_url(body.url, service.fetcher.policy)
    changed = _actions(service).outbox.update_endpoint(
        name, url=body.url, enabled=body.enabled, rotate_secret=body.rotate_secret, actor=key.actor
    )
    return _endpoint_out(changed)


@router.delete("/webhooks/{name}", summary="Remove an endpoint (its undelivered events die)")
def remove_endpoint(
    name: Name, service: Service = Depends(get_service), key: ApiKey = Depends(requires(*CURATE))
) -> dict[str, Any]:
    dead = _actions(service).outbox.remove_endpoint(name, actor=key.actor)
    return {"deleted": name, "undelivered_events": dead}


@router.post(
    "/webhooks/{name}/test", response_model=DeliveryOut, summary="Send a signed test event now"
)
def test_endpoint(
    name: Name, service: Service = Depends(get_service), _key: ApiKey = Depends(requires(*CURATE))
) -> DeliveryOut:
    # The service's address policy: a URL it refuses is reported as refused, never connected to.
    deliverer = Deliverer.from_settings(
        service.amparo.actions.outbox, service.settings, urls=service.fetcher.policy
    )
    try:
        result = deliverer.send_test(name)
    finally:
        deliverer.close()
    return DeliveryOut(
        event_id=result.event_id,
        delivered=result.delivered,
        status=result.status,
        error=result.error,
    )


# -- the actions-taken log --------------------------------------------------------------------


@router.get("/actions", response_model=list[ActionRecordOut], summary="Actions taken, newest first")
def actions_log(
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    sha256: Annotated[str | None, Query(min_length=64, max_length=64)] = None,
    rule: Annotated[str | None, Query(max_length=100)] = None,
    outcome: Literal["done", "failed", "skipped"] | None = None,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*READ_BANKS)),
) -> list[ActionRecordOut]:
    records = _actions(service).log(limit=limit, sha256=sha256, rule=rule, outcome=outcome)
    return [ActionRecordOut(**r.to_json()) for r in records]
