"""Tables of the actions work: versioned rules, the actions-taken log, webhook endpoints and the
webhook outbox (on the shared declarative ``Base``; migration ``versions/0005_actions.py``).

Nothing here holds media: an action record and an outbox event name content by its hashes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from amparo.store.models import Base, BigId

__all__ = ["ActionTakenRow", "Base", "OutboxRow", "RuleVersionRow", "WebhookEndpointRow"]


class RuleVersionRow(Base):
    """One immutable version of an action rule. A change writes a new version; removal writes a
    version with ``deleted`` set, so the whole history stays readable."""

    __tablename__ = "action_rules"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_action_rule_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    description: Mapped[str] = mapped_column(Text, default="")
    conditions: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: banks, categories, signal_types, max_distance, source_kinds (all optional)."""
    actions: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of ``{"type": ..., ...}``."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))


class ActionTakenRow(Base):
    """Every action a rule took on a find, with its outcome (never the media)."""

    __tablename__ = "actions_taken"
    __table_args__ = (
        Index("ix_action_taken_sha256", "sha256"),
        Index("ix_action_taken_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(String(100))
    rule_version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text, default="{}")
    outcome: Mapped[str] = mapped_column(String(20))
    """``done``, ``failed`` or ``skipped``."""
    detail: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: case_id, evidence_id, draft_id, event_id, endpoint, quarantine paths..."""
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class WebhookEndpointRow(Base):
    """Where webhook events go, and the secret that signs them."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    """Sealed with the evidence keyring (``enc1:...``), see ``store.secrets``."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboxRow(Base):
    """One webhook event waiting for (or done with) delivery. ``event_id`` is the idempotency
    key receivers dedupe on; ``claim_token``/``claimed_until`` are a deliverer's lease."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    endpoint: Mapped[str] = mapped_column(String(100))
    payload: Mapped[str] = mapped_column(Text)
    """The exact JSON body sent (and signed) on every attempt."""
    state: Mapped[str] = mapped_column(String(12), default="pending")
    """``pending``, ``delivered`` or ``dead``."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
