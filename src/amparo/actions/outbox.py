"""Webhook endpoints and the outbox of events waiting to be delivered: what they are.

An event is written to the outbox in the same transaction as the action that caused it, so an
event exists exactly when its action was recorded. Deliverers *claim* due events under a lease
(``claimed_until``; on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, on SQLite under the single
writer lock), so several deliverers never send one event at the same time; a deliverer that
dies mid-send leaves its lease to run out, and the event is sent again. Delivery is therefore
at least once; receivers dedupe on the event id (the ``Idempotency-Key`` header).

The storage of endpoints and events is :class:`amparo.store.webhooks.Outbox`; this module holds
the records it returns and the rules a new endpoint must follow.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from amparo.errors import InputError
from amparo.names import validate_name

OUTBOX_STATES = ("pending", "delivered", "dead")
MIN_SECRET_LENGTH = 16

_SCAN_EVENTS = uuid.UUID("5b0c4e36-9d57-4a3c-8f0e-2f1a7c6d9e11")


def new_event_id(replay_key: str | None = None) -> str:
    """The idempotency key of one event: a random UUID, or, for a find that may be acted on
    again (a resumed scan re-reading a file), a UUID derived from ``replay_key`` so the
    repeat carries the same key and is neither queued twice nor applied twice."""
    if replay_key is not None:
        return str(uuid.uuid5(_SCAN_EVENTS, replay_key))
    return str(uuid.uuid4())


def new_secret() -> str:
    """A fresh signing secret for an endpoint."""
    return "whsec_" + secrets.token_urlsafe(32)


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
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        # urlsplit keeps NUL and most control characters; SQLite would store them (PostgreSQL
        # text cannot hold NUL and fails in the driver), and no receiver's URL contains one.
        raise InputError(
            f"the webhook URL {url!r} contains a control character",
            hint="remove it (spaces and such belong percent-encoded, e.g. %20)",
        )
    return url


def validate_endpoint(name: str, url: str, secret: str | None) -> None:
    """Refuse a new endpoint's bad name, URL or (given) secret."""
    validate_name(name, "endpoint")
    if name == "outbox":
        # GET /v1/webhooks/outbox lists the outbox; an endpoint of that name could not be read.
        raise InputError("'outbox' is reserved", hint="choose another endpoint name")
    validate_url(url)
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise InputError(f"a webhook secret needs at least {MIN_SECRET_LENGTH} characters")


def validate_state(state: str | None) -> None:
    if state is not None and state not in OUTBOX_STATES:
        raise InputError(f"unknown state {state!r}", hint="use " + ", ".join(OUTBOX_STATES))


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
