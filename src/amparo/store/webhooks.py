"""Webhook endpoints and the outbox in the installation's database (see
:mod:`amparo.actions.outbox` for what they are and how delivery works).

Times that decide something (an event's due time, a claim's lease, a retry) come from the
caller as ``now`` (the current UTC time when not given), so a deliverer can run on an
injected clock.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from amparo.actions.outbox import (
    OUTBOX_STATES,
    ClaimedEvent,
    Endpoint,
    NewEndpoint,
    OutboxEvent,
    new_secret,
    validate_endpoint,
    validate_state,
    validate_url,
)
from amparo.clock import as_utc, utc_now
from amparo.errors import ConflictError, NotFoundError
from amparo.store.models_actions import OutboxRow, WebhookEndpointRow
from amparo.store.secrets import webhook_context

if TYPE_CHECKING:
    from amparo.store import Store
    from amparo.store.uow import UnitOfWork

_endpoints = cast(Table, WebhookEndpointRow.__table__)
_outbox = cast(Table, OutboxRow.__table__)


def enqueue(
    tx: UnitOfWork, *, event_id: str, endpoint: str, payload: str, now: datetime | None = None
) -> None:
    """Add an event to the outbox inside the caller's transaction; due at once. An event id
    already queued (a replayed find) is left as it is.

    The endpoint is checked here, inside the transaction and under the audit chain's lock
    (which ``remove_endpoint`` takes too): an endpoint removed after the find's rule check
    gets its event recorded ``dead`` ("endpoint removed") instead of pending forever."""
    tx.hold_audit()
    if tx.conn.execute(select(_outbox.c.id).where(_outbox.c.event_id == event_id)).first():
        return
    known = tx.conn.execute(select(_endpoints.c.id).where(_endpoints.c.name == endpoint)).first()
    now = now or utc_now()
    tx.conn.execute(
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


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        row.name, row.url, bool(row.enabled), as_utc(row.created_at), as_utc(row.updated_at)
    )


def _event(row: Any) -> OutboxEvent:
    return OutboxEvent(
        id=int(row.id),
        event_id=row.event_id,
        endpoint=row.endpoint,
        state=row.state,
        attempts=int(row.attempts),
        created_at=as_utc(row.created_at),
        next_attempt_at=as_utc(row.next_attempt_at),
        delivered_at=as_utc(row.delivered_at),
        last_status=row.last_status,
        last_error=row.last_error,
        payload=json.loads(row.payload),
    )


class Outbox:
    """Webhook endpoints (their secrets sealed at rest) and outbox events."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._db = store.db
        self._postgres = store.engine.dialect.name == "postgresql"

    # -- endpoints --------------------------------------------------------------------------

    def add_endpoint(
        self, name: str, url: str, *, actor: str, secret: str | None = None, enabled: bool = True
    ) -> NewEndpoint:
        """Add a receiver; returns it with its signing secret (generated unless given)."""
        validate_endpoint(name, url, secret)
        secret = secret or new_secret()
        now = utc_now()
        try:
            with self._db.transaction(refresh=False) as tx:
                tx.conn.execute(
                    insert(_endpoints).values(
                        name=name,
                        url=url,
                        secret=self._store.seal_secret(secret, webhook_context(name)),
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
        return row.url, self._store.open_secret(row.secret, webhook_context(name))

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
        values: dict[str, Any] = {"updated_at": utc_now()}
        if url is not None:
            values["url"] = validate_url(url)
        if enabled is not None:
            values["enabled"] = enabled
        secret = new_secret() if rotate_secret else None
        if secret is not None:
            values["secret"] = self._store.seal_secret(secret, webhook_context(name))
        details = {k: v for k, v in values.items() if k in ("url", "enabled")}
        if secret is not None:
            details["secret"] = "rotated"
        with self._db.transaction(refresh=False) as tx:
            tx.conn.execute(update(_endpoints).where(_endpoints.c.name == name).values(**values))
            tx.audit(actor, "webhook.update", f"webhook:{name}", details)
        endpoint = self.get_endpoint(name)
        return NewEndpoint(endpoint, secret) if secret is not None else endpoint

    def remove_endpoint(self, name: str, *, actor: str) -> int:
        """Remove an endpoint; its undelivered events are marked dead. Returns how many."""
        self.get_endpoint(name)
        with self._db.transaction(refresh=False) as tx:
            # Serialised with ``enqueue`` (same lock): an event recorded while this runs is
            # either seen and marked dead here, or sees the endpoint gone and is born dead.
            tx.hold_audit()
            dead = tx.conn.execute(
                update(_outbox)
                .where(_outbox.c.endpoint == name, _outbox.c.state == "pending")
                .values(state="dead", last_error="endpoint removed", claim_token=None)
            ).rowcount
            tx.conn.execute(delete(_endpoints).where(_endpoints.c.name == name))
            tx.audit(actor, "webhook.remove", f"webhook:{name}", {"undelivered_events": dead})
        return int(dead)

    # -- events -----------------------------------------------------------------------------

    def events(
        self, *, state: str | None = None, endpoint: str | None = None, limit: int = 100
    ) -> list[OutboxEvent]:
        """Outbox events, newest first."""
        validate_state(state)
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

    def retry(self, ref: str | int, *, actor: str, now: datetime | None = None) -> OutboxEvent:
        """Send an event again now: a dead one gets a fresh set of attempts. A delivered event
        is sent again too (receivers dedupe it by its id)."""
        event = self.get_event(ref)
        with self._db.transaction(refresh=False) as tx:
            tx.conn.execute(
                update(_outbox)
                .where(_outbox.c.id == event.id)
                .values(
                    state="pending",
                    attempts=0,
                    next_attempt_at=now or utc_now(),
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

    def claim(
        self, *, limit: int, lease_seconds: float, now: datetime | None = None
    ) -> list[ClaimedEvent]:
        """Take up to ``limit`` events due at ``now`` under a lease, counting an attempt for
        each."""
        now = now or utc_now()
        due = self.next_due()
        if due is None or due > now:
            return []  # nothing to do: no write transaction at all
        token = uuid.uuid4().hex
        pick = select(_outbox.c.id).where(*self._due(now)).order_by(_outbox.c.id).limit(limit)
        if self._postgres:
            pick = pick.with_for_update(skip_locked=True)
        with self._db.transaction(refresh=False) as tx:
            tx.conn.execute(
                update(_outbox)
                .where(_outbox.c.id.in_(pick.scalar_subquery()))
                .values(
                    claim_token=token,
                    claimed_until=now + timedelta(seconds=lease_seconds),
                    attempts=_outbox.c.attempts + 1,
                ),
            )
            rows = tx.conn.execute(
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
                secret=self._store.open_secret(r.secret, webhook_context(r.endpoint)),
                body=r.payload.encode(),
                attempts=int(r.attempts),
                token=token,
            )
            for r in rows
        ]

    def mark_delivered(
        self, event: ClaimedEvent, status: int, *, now: datetime | None = None
    ) -> None:
        """Record a 2xx answer. Done whoever holds the lease now: it was delivered."""
        with self._db.transaction(refresh=False) as tx:
            tx.conn.execute(
                update(_outbox)
                .where(_outbox.c.id == event.id, _outbox.c.state == "pending")
                .values(
                    state="delivered",
                    delivered_at=now or utc_now(),
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
            tx.conn.execute(
                update(_outbox)
                .where(
                    _outbox.c.id == event.id,
                    _outbox.c.claim_token == event.token,
                    _outbox.c.state == "pending",
                )
                .values(**values)
            )
