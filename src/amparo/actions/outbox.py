"""Webhook endpoints and the persistent outbox of events waiting to be delivered.

An event is written to the outbox in the same transaction as the action that caused it, so an
event exists exactly when its action was recorded. Deliverers *claim* due events under a lease
(``claimed_until``; on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, on SQLite under the single
writer lock), so several deliverers never send one event at the same time; a deliverer that
dies mid-send leaves its lease to run out, and the event is sent again. Delivery is therefore
at least once; receivers dedupe on the event id (the ``Idempotency-Key`` header).
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import Connection, Table, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from amparo.errors import ConflictError, InputError, NotFoundError
from amparo.names import validate_name
from amparo.store import Store
from amparo.store import audit as audit_chain
from amparo.store.models_actions import OutboxRow, WebhookEndpointRow
from amparo.store.repository import as_utc
from amparo.store.secrets import webhook_context

_endpoints = cast(Table, WebhookEndpointRow.__table__)
_outbox = cast(Table, OutboxRow.__table__)
OUTBOX_STATES = ("pending", "delivered", "dead")


_SCAN_EVENTS = uuid.UUID("5b0c4e36-9d57-4a3c-8f0e-2f1a7c6d9e11")


def new_event_id(replay_key: str | None = None) -> str:
    """The idempotency key of one event: a random UUID, or, for a find that may be acted on
    again (a resumed scan re-reading a file), a UUID derived from ``replay_key`` so the
    repeat carries the same key and is neither queued twice nor applied twice."""
    if replay_key is not None:
        return str(uuid.uuid5(_SCAN_EVENTS, replay_key))
    return str(uuid.uuid4())


def enqueue(conn: Connection, *, event_id: str, endpoint: str, payload: str) -> None:
    """Add an event to the outbox inside the caller's transaction; due at once. An event id
    already queued (a replayed find) is left as it is.

    The endpoint is checked here, inside the transaction and under the audit chain's lock
    (which ``remove_endpoint`` takes too): an endpoint removed after the find's rule check
    gets its event recorded ``dead`` ("endpoint removed") instead of pending forever."""
    audit_chain.hold(conn)
    if conn.execute(select(_outbox.c.id).where(_outbox.c.event_id == event_id)).first():
        return
    known = conn.execute(select(_endpoints.c.id).where(_endpoints.c.name == endpoint)).first()
    now = datetime.now(UTC)
    conn.execute(
        insert(_outbox).values(
            event_id=event_id,
            endpoint=endpoint,
            payload=payload,
            state="pending" if known is not None else "dead",
            last_error=None if known is not None else "endpoint removed",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
    )


@dataclass(frozen=True)
class Endpoint:
    """A webhook receiver. Its secret is not part of this view: it is shown once, at creation."""

    name: str
    url: str
    enabled: bool
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class NewEndpoint:
    endpoint: Endpoint
    secret: str
    """The signing secret: the only time it is shown."""


@dataclass(frozen=True)
class OutboxEvent:
    """One event in the outbox, as ``amparo webhooks outbox`` shows it."""

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

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "endpoint": self.endpoint,
            "state": self.state,
            "attempts": self.attempts,
            "created_at": self.created_at.isoformat(),
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "payload": self.payload,
        }


@dataclass(frozen=True)
class ClaimedEvent:
    """An event a deliverer holds under lease, with what it needs to send it."""

    id: int
    event_id: str
    endpoint: str
    url: str
    secret: str
    body: bytes
    attempts: int
    """Attempts so far, this one included."""
    token: str


def _endpoint(row: Any) -> Endpoint:
    created, updated = as_utc(row.created_at), as_utc(row.updated_at)
    assert created is not None and updated is not None
    return Endpoint(row.name, row.url, bool(row.enabled), created, updated)


def _event(row: Any) -> OutboxEvent:
    created, due = as_utc(row.created_at), as_utc(row.next_attempt_at)
    assert created is not None and due is not None
    return OutboxEvent(
        id=int(row.id),
        event_id=row.event_id,
        endpoint=row.endpoint,
        state=row.state,
        attempts=int(row.attempts),
        created_at=created,
        next_attempt_at=due,
        delivered_at=as_utc(row.delivered_at),
        last_status=row.last_status,
        last_error=row.last_error,
        payload=json.loads(row.payload),
    )


def validate_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.netloc
        or len(url) > 2048
    ):
        raise InputError(
            f"{url!r} is not an http(s) URL", hint="e.g. https://platform.example/amparo-events"
        )
    return url


class Outbox:
    """Webhook endpoints and outbox events in the installation's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._db = store.db
        self._postgres = store.engine.dialect.name == "postgresql"

    # -- endpoints --------------------------------------------------------------------------

    def add_endpoint(
        self, name: str, url: str, *, actor: str, secret: str | None = None, enabled: bool = True
    ) -> NewEndpoint:
        """Add a receiver; returns it with its signing secret (generated unless given)."""
        validate_name(name, "endpoint")
        if name == "outbox":
            # GET /v1/webhooks/outbox lists the outbox; an endpoint of that name could not be read.
            raise InputError("'outbox' is reserved", hint="choose another endpoint name")
        validate_url(url)
        if secret is not None and len(secret) < 16:
            raise InputError("a webhook secret needs at least 16 characters")
        secret = secret or "whsec_" + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        try:
            with self._db.transaction(refresh=False) as tx:
                conn = tx.conn
                conn.execute(
                    insert(_endpoints).values(
                        name=name,
                        url=url,
                        secret=self.store.seal_secret(secret, webhook_context(name)),
                        enabled=enabled,
                        created_at=now,
                        updated_at=now,
                    )
                )
                tx.audit(actor, "webhook.add", f"webhook:{name}", {"url": url, "enabled": enabled})
        except IntegrityError:
            raise ConflictError(
                f"a webhook endpoint named {name!r} already exists",
                hint="remove it first or choose another name",
            ) from None
        return NewEndpoint(self.get_endpoint(name), secret)

    def get_endpoint(self, name: str) -> Endpoint:
        with self._db.reading() as conn:
            row = conn.execute(select(_endpoints).where(_endpoints.c.name == name)).first()
        if row is None:
            raise NotFoundError(
                f"no webhook endpoint named {name!r}", hint="see `amparo webhooks list`"
            )
        return _endpoint(row)

    def endpoint_secret(self, name: str) -> tuple[str, str]:
        """``(url, secret)`` of an endpoint (for sending; never shown)."""
        with self._db.reading() as conn:
            row = conn.execute(
                select(_endpoints.c.url, _endpoints.c.secret).where(_endpoints.c.name == name)
            ).first()
        if row is None:
            raise NotFoundError(f"no webhook endpoint named {name!r}")
        return row.url, self.store.open_secret(row.secret, webhook_context(name))

    def list_endpoints(self) -> list[Endpoint]:
        with self._db.reading() as conn:
            return [
                _endpoint(r) for r in conn.execute(select(_endpoints).order_by(_endpoints.c.name))
            ]

    def update_endpoint(
        self,
        name: str,
        *,
        actor: str,
        url: str | None = None,
        enabled: bool | None = None,
        rotate_secret: bool = False,
    ) -> NewEndpoint | Endpoint:
        """Change an endpoint; with ``rotate_secret`` returns the new secret (shown once)."""
        self.get_endpoint(name)
        values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
        if url is not None:
            values["url"] = validate_url(url)
        if enabled is not None:
            values["enabled"] = enabled
        secret = "whsec_" + secrets.token_urlsafe(32) if rotate_secret else None
        if secret is not None:
            values["secret"] = self.store.seal_secret(secret, webhook_context(name))
        details = {k: v for k, v in values.items() if k in ("url", "enabled")}
        if secret is not None:
            details["secret"] = "rotated"
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            conn.execute(update(_endpoints).where(_endpoints.c.name == name).values(**values))
            tx.audit(actor, "webhook.update", f"webhook:{name}", details)
        endpoint = self.get_endpoint(name)
        return NewEndpoint(endpoint, secret) if secret is not None else endpoint

    def remove_endpoint(self, name: str, *, actor: str) -> int:
        """Remove an endpoint; its undelivered events are marked dead. Returns how many."""
        self.get_endpoint(name)
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            # Serialised with ``enqueue`` (same lock): an event recorded while this runs is
            # either seen and marked dead here, or sees the endpoint gone and is born dead.
            audit_chain.hold(conn)
            dead = conn.execute(
                update(_outbox)
                .where(_outbox.c.endpoint == name, _outbox.c.state == "pending")
                .values(state="dead", last_error="endpoint removed", claim_token=None)
            ).rowcount
            conn.execute(delete(_endpoints).where(_endpoints.c.name == name))
            tx.audit(actor, "webhook.remove", f"webhook:{name}", {"undelivered_events": dead})
        return int(dead)

    # -- events -----------------------------------------------------------------------------

    def events(
        self, *, state: str | None = None, endpoint: str | None = None, limit: int = 100
    ) -> list[OutboxEvent]:
        """Outbox events, newest first."""
        if state is not None and state not in OUTBOX_STATES:
            raise InputError(f"unknown state {state!r}", hint="use " + ", ".join(OUTBOX_STATES))
        query = select(_outbox).order_by(_outbox.c.id.desc()).limit(limit)
        if state is not None:
            query = query.where(_outbox.c.state == state)
        if endpoint is not None:
            query = query.where(_outbox.c.endpoint == endpoint)
        with self._db.reading() as conn:
            return [_event(r) for r in conn.execute(query)]

    def get_event(self, ref: str | int) -> OutboxEvent:
        """An event by its outbox id (a number) or its event id (a UUID)."""
        text = str(ref)
        by_id = text.isascii() and text.isdigit() and len(text) <= 18  # fits a 64-bit id
        cond = _outbox.c.id == int(text) if by_id else _outbox.c.event_id == text
        with self._db.reading() as conn:
            row = conn.execute(select(_outbox).where(cond)).first()
        if row is None:
            raise NotFoundError(f"no outbox event {text!r}", hint="see `amparo webhooks outbox`")
        return _event(row)

    def counts(self) -> dict[str, int]:
        with self._db.reading() as conn:
            rows = conn.execute(select(_outbox.c.state, func.count()).group_by(_outbox.c.state))
            found = {r[0]: int(r[1]) for r in rows}
        return {s: found.get(s, 0) for s in OUTBOX_STATES}

    def retry(self, ref: str | int, *, actor: str) -> OutboxEvent:
        """Send an event again now: a dead one gets a fresh set of attempts. A delivered event
        is sent again too (receivers dedupe it by its id)."""
        event = self.get_event(ref)
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            conn.execute(
                update(_outbox)
                .where(_outbox.c.id == event.id)
                .values(
                    state="pending",
                    attempts=0,
                    next_attempt_at=datetime.now(UTC),
                    claimed_until=None,
                    claim_token=None,
                )
            )
            tx.audit(
                actor,
                "webhook.retry",
                f"webhook:{event.endpoint}",
                {"event_id": event.event_id, "was": event.state},
            )
        return self.get_event(event.id)

    def _due(self, now: datetime) -> Any:
        enabled = select(_endpoints.c.name).where(_endpoints.c.enabled.is_(True))
        return (
            _outbox.c.state == "pending",
            _outbox.c.next_attempt_at <= now,
            or_(_outbox.c.claimed_until.is_(None), _outbox.c.claimed_until < now),
            _outbox.c.endpoint.in_(enabled.scalar_subquery()),
        )

    def next_due(self) -> datetime | None:
        """When the earliest pending event to an enabled endpoint falls due (a cheap read)."""
        enabled = select(_endpoints.c.name).where(_endpoints.c.enabled.is_(True))
        with self._db.reading() as conn:
            value = conn.execute(
                select(func.min(func.coalesce(_outbox.c.claimed_until, _outbox.c.next_attempt_at)))
                .where(_outbox.c.state == "pending")
                .where(_outbox.c.endpoint.in_(enabled.scalar_subquery()))
            ).scalar()
        return as_utc(value)

    def claim(self, *, limit: int, lease_seconds: float) -> list[ClaimedEvent]:
        """Take up to ``limit`` due events under a lease, counting an attempt for each."""
        now = datetime.now(UTC)
        due = self.next_due()
        if due is None or due > now:
            return []  # nothing to do: no write transaction at all
        token = uuid.uuid4().hex
        pick = select(_outbox.c.id).where(*self._due(now)).order_by(_outbox.c.id).limit(limit)
        if self._postgres:
            pick = pick.with_for_update(skip_locked=True)
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            conn.execute(
                update(_outbox)
                .where(_outbox.c.id.in_(pick.scalar_subquery()))
                .values(
                    claim_token=token,
                    claimed_until=now + timedelta(seconds=lease_seconds),
                    attempts=_outbox.c.attempts + 1,
                ),
            )
            rows = conn.execute(
                select(
                    _outbox.c.id,
                    _outbox.c.event_id,
                    _outbox.c.endpoint,
                    _outbox.c.payload,
                    _outbox.c.attempts,
                    _endpoints.c.url,
                    _endpoints.c.secret,
                )
                .join(_endpoints, _endpoints.c.name == _outbox.c.endpoint)
                .where(_outbox.c.claim_token == token)
                .order_by(_outbox.c.id)
            ).all()
        return [
            ClaimedEvent(
                id=int(r.id),
                event_id=r.event_id,
                endpoint=r.endpoint,
                url=r.url,
                secret=self.store.open_secret(r.secret, webhook_context(r.endpoint)),
                body=r.payload.encode(),
                attempts=int(r.attempts),
                token=token,
            )
            for r in rows
        ]

    def mark_delivered(self, event: ClaimedEvent, status: int) -> None:
        """Record a 2xx answer. Done whoever holds the lease now: it was delivered."""
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            conn.execute(
                update(_outbox)
                .where(_outbox.c.id == event.id, _outbox.c.state == "pending")
                .values(
                    state="delivered",
                    delivered_at=datetime.now(UTC),
                    last_status=status,
                    last_error=None,
                    claimed_until=None,
                    claim_token=None,
                )
            )

    def mark_failed(
        self, event: ClaimedEvent, *, status: int | None, error: str, retry_at: datetime | None
    ) -> None:
        """Record a failed attempt: retry at ``retry_at``, or dead when it is None. Only while
        this deliverer still holds the lease (a later claim's outcome wins)."""
        values: dict[str, Any] = {
            "last_status": status,
            "last_error": error[:2000],
            "claimed_until": None,
            "claim_token": None,
        }
        if retry_at is None:
            values["state"] = "dead"
        else:
            values["next_attempt_at"] = retry_at
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            conn.execute(
                update(_outbox)
                .where(
                    _outbox.c.id == event.id,
                    _outbox.c.claim_token == event.token,
                    _outbox.c.state == "pending",
                )
                .values(**values)
            )
