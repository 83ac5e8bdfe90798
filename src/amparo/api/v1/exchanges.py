"""v1: collaborations (an exchange feeding a bank), their status and fetches (curators).

Every route calls :class:`amparo.exchanges.service.ExchangeService` only. A collaboration's
credentials are a *reference* (``file:/path`` or ``env:AMPARO_SECRET_NAME``): the secret itself is
never accepted in a body, stored or returned.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from amparo.api.auth import CURATE, requires
from amparo.api.schemas import Strict
from amparo.api.service import Service, get_service
from amparo.errors import CredentialsError, ExchangeError, InputError
from amparo.exchanges.model import (
    Collaboration,
    CollaborationStatus,
    FetchResult,
    QuarantinedItem,
)
from amparo.keys import ApiKey

router = APIRouter(prefix="/exchanges", tags=["v1: exchanges"])

Name = Annotated[str, Path(min_length=1, max_length=100)]
CREDENTIALS_REFERENCE = re.compile(r"^(file:.+|env:[A-Za-z_][A-Za-z0-9_]*)$")
CREDENTIALS_HINT = (
    "give where the secret is, not the secret: file:/path/to/secret.json or env:AMPARO_SECRET_NAME"
)
FETCH_FAILED_HINT = (
    "what was fetched before the failure is kept and the next fetch resumes from there; "
    "see last_error in GET /v1/exchanges/{name}, fix the source or credentials, and fetch again"
)
SHOWN_QUARANTINE = 5


def check_credentials_reference(value: str | None) -> str | None:
    """Refuse anything but a reference: a pasted secret must not reach the database."""
    if value is None:
        return None
    if not CREDENTIALS_REFERENCE.match(value):
        raise InputError(
            f"credentials {_redacted(value)!r} are not a reference", hint=CREDENTIALS_HINT
        )
    return value


def _redacted(value: str) -> str:
    return value[:6] + "..." if len(value) > 8 else "..."


class CollaborationIn(Strict):
    """A new collaboration: exchange ``exchange`` feeding bank ``bank``."""

    name: str = Field(min_length=1, max_length=100)
    exchange: str = Field(
        min_length=1, max_length=100, description="Exchange type (GET /v1/exchanges/types)."
    )
    bank: str = Field(min_length=1, max_length=100, description="Target bank (made if missing).")
    settings: dict[str, Any] = Field(default_factory=dict, description="The exchange's settings.")
    credentials: str | None = Field(
        None,
        max_length=1000,
        description="Where the secret is: file:/path (in exchange_credentials_dirs) or "
        "env:AMPARO_SECRET_NAME.",
    )
    interval_seconds: int = Field(3600, ge=1, le=366 * 86400)
    feedback: bool = True
    enabled: bool = True


class CollaborationPatch(Strict):
    """Changes; a field left out is unchanged (``credentials: null`` removes the reference)."""

    settings: dict[str, Any] | None = None
    credentials: str | None = Field(None, max_length=1000)
    interval_seconds: int | None = Field(None, ge=1, le=366 * 86400)
    feedback: bool | None = None
    enabled: bool | None = None


class QuarantinedOut(BaseModel):
    id: int
    reason: str
    record_id: str | None
    raw: str
    first_seen: datetime
    last_tried: datetime
    attempts: int
    resolved: bool

    @classmethod
    def of(cls, q: QuarantinedItem) -> QuarantinedOut:
        return cls(
            id=q.id,
            reason=q.reason,
            record_id=q.record_id,
            raw=q.raw,
            first_seen=q.first_seen,
            last_tried=q.last_tried,
            attempts=q.attempts,
            resolved=q.resolved,
        )


class CollaborationOut(BaseModel):
    """A collaboration and its status (docs/exchanges.md, "Status fields")."""

    name: str
    exchange: str
    bank: str
    settings: dict[str, Any]
    credentials: str | None = Field(description="The reference only, never the secret.")
    interval_seconds: int
    enabled: bool
    feedback: bool
    created_at: datetime | None = None
    last_fetch_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    lag_seconds: float | None = None
    entries_added: int = 0
    entries_removed: int = 0
    records: int = 0
    quarantined: int = 0
    pending_opinions: int = 0
    lease_holder: str | None = None
    next_fetch_at: datetime | None = None
    checkpoint: dict[str, Any] | None = None
    quarantine: list[QuarantinedOut] | None = Field(
        None, description="The first quarantined items (GET /v1/exchanges/{name} only)."
    )

    @classmethod
    def of(
        cls, s: CollaborationStatus, quarantine: list[QuarantinedItem] | None = None
    ) -> CollaborationOut:
        c = s.collaboration
        return cls(
            name=c.name,
            exchange=c.exchange,
            bank=c.bank,
            settings=c.settings,
            credentials=c.credentials,
            interval_seconds=c.interval_seconds,
            enabled=c.enabled,
            feedback=c.feedback,
            created_at=c.created_at,
            last_fetch_at=s.last_fetch_at,
            last_attempt_at=s.last_attempt_at,
            last_error=s.last_error,
            lag_seconds=s.lag_seconds,
            entries_added=s.entries_added,
            entries_removed=s.entries_removed,
            records=s.records,
            quarantined=s.quarantined,
            pending_opinions=s.pending_opinions,
            lease_holder=s.lease_holder,
            next_fetch_at=s.next_fetch_at,
            checkpoint=s.checkpoint,
            quarantine=None if quarantine is None else [QuarantinedOut.of(q) for q in quarantine],
        )


class FetchResultOut(BaseModel):
    """What one fetch did. ``fetched`` is false when another process held the lease."""

    collaboration: str
    fetched: bool
    batches: int
    upserts: int
    deletions: int
    added: int
    removed: int
    quarantined: int
    skipped_loops: int
    full: bool
    error: str | None

    @classmethod
    def of(cls, r: FetchResult) -> FetchResultOut:
        return cls(**asdict(r))


class ExchangeTypeOut(BaseModel):
    name: str
    description: str
    supports_feedback: bool
    needs_credentials: bool


class RemovedOut(BaseModel):
    removed: str
    entries_withdrawn: bool


def _status(service: Service, name: str, *, quarantine: bool = False) -> CollaborationOut:
    exchanges = service.amparo.exchanges
    status = exchanges.status(name)
    shown = exchanges.quarantined(name, limit=SHOWN_QUARANTINE) if quarantine else None
    return CollaborationOut.of(status, shown)


def _config_errors(exc: CredentialsError) -> InputError:
    """A credentials reference that cannot be read is the caller's input, not a 401 (which
    would say *their API key* was refused)."""
    return InputError(exc.message, hint=exc.hint or CREDENTIALS_HINT)


@router.get("", response_model=list[CollaborationOut], summary="List collaborations")
def list_exchanges(
    service: Service = Depends(get_service), _key: ApiKey = Depends(requires(*CURATE))
) -> list[CollaborationOut]:
    return [CollaborationOut.of(s) for s in service.amparo.exchanges.list()]


@router.get("/types", response_model=list[ExchangeTypeOut], summary="List exchange types")
def list_types(_key: ApiKey = Depends(requires(*CURATE))) -> list[ExchangeTypeOut]:
    from amparo.exchanges.base import exchange_types

    return [
        ExchangeTypeOut(
            name=kind,
            description=cls.description,
            supports_feedback=cls.supports_feedback,
            needs_credentials=cls.needs_credentials,
        )
        for kind, cls in exchange_types().items()
    ]


@router.post("", response_model=CollaborationOut, status_code=201, summary="Add a collaboration")
def create_exchange(
    body: CollaborationIn,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> CollaborationOut:
    collaboration = Collaboration(
        name=body.name,
        exchange=body.exchange,
        bank=body.bank,
        settings=body.settings,
        credentials=check_credentials_reference(body.credentials),
        interval_seconds=body.interval_seconds,
        enabled=body.enabled,
        feedback=body.feedback,
    )
    try:
        added = service.amparo.exchanges.add(collaboration, actor=key.actor)
    except CredentialsError as exc:
        raise _config_errors(exc) from None
    return _status(service, added.name)


@router.get("/{name}", response_model=CollaborationOut, summary="Show a collaboration's status")
def show_exchange(
    name: Name, service: Service = Depends(get_service), _key: ApiKey = Depends(requires(*CURATE))
) -> CollaborationOut:
    return _status(service, name, quarantine=True)


@router.patch("/{name}", response_model=CollaborationOut, summary="Change a collaboration")
def update_exchange(
    name: Name,
    body: CollaborationPatch,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> CollaborationOut:
    exchanges = service.amparo.exchanges
    changes = body.model_dump(exclude_unset=True)
    # null means "no change", except for credentials where it removes the reference.
    changes = {k: v for k, v in changes.items() if v is not None or k == "credentials"}
    enabled = changes.pop("enabled", None)
    if "credentials" in changes:
        check_credentials_reference(changes["credentials"])
    exchanges.get(name)  # 404 before anything changes
    try:
        if changes:
            exchanges.update(name, actor=key.actor, **changes)
    except CredentialsError as exc:
        raise _config_errors(exc) from None
    if enabled is True:
        exchanges.resume(name, actor=key.actor)
    elif enabled is False:
        exchanges.pause(name, actor=key.actor)
    return _status(service, name)


@router.delete("/{name}", response_model=RemovedOut, summary="Remove a collaboration")
def delete_exchange(
    name: Name,
    withdraw_entries: Annotated[
        bool, Query(description="Also withdraw the entries it added (default: they stay).")
    ] = False,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> RemovedOut:
    service.amparo.exchanges.remove(name, actor=key.actor, keep_entries=not withdraw_entries)
    return RemovedOut(removed=name, entries_withdrawn=withdraw_entries)


@router.post(
    "/{name}/fetch",
    response_model=FetchResultOut,
    summary="Fetch a collaboration now",
    responses={502: {"description": "The source failed; the body adds the partial result."}},
)
async def fetch_exchange(
    name: Name,
    full: Annotated[
        bool, Query(description="Ignore the checkpoint: fetch everything and converge.")
    ] = False,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*CURATE)),
) -> FetchResultOut | JSONResponse:
    """Runs in a worker thread (a fetch may take minutes), under the collaboration's lease:
    when another process holds it the answer is 200 with ``fetched: false``."""
    exchanges = service.amparo.exchanges
    try:
        result = await run_in_threadpool(exchanges.fetch, name, full=full)
    except ExchangeError as exc:
        # Credentials the *source* refused included: 502, not 401 (that is about our caller).
        return _fetch_failed(exc.code, f"fetching {name} failed: {exc.message}", exc.hint)
    if result.error:
        return _fetch_failed(
            "exchange_failed",
            f"fetching {name} failed: {result.error}",
            FETCH_FAILED_HINT.replace("{name}", name),
            result,
        )
    return FetchResultOut.of(result)


def _fetch_failed(
    code: str, message: str, hint: str | None, result: FetchResult | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message, "hint": hint}}
    if result is not None:
        body["result"] = FetchResultOut.of(result).model_dump()
    return JSONResponse(body, status_code=502)


@router.get(
    "/{name}/quarantine",
    response_model=list[QuarantinedOut],
    summary="Quarantined records and pages of a collaboration",
)
def quarantine(
    name: Name,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*CURATE)),
) -> list[QuarantinedOut]:
    return [QuarantinedOut.of(q) for q in service.amparo.exchanges.quarantined(name, limit=limit)]
