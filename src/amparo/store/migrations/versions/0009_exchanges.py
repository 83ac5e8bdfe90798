"""Collaborations, their records, quarantine, opinions outbox; generic leases

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SignalKey = sa.String(128).with_variant(sa.String(128, collation="C"), "postgresql")
# Integer ids are never handed out twice on SQLite (see store/schema.py, migration 0008).
AUTOINCREMENT = {"sqlite_autoincrement": True}


def upgrade() -> None:
    op.create_table(
        "collaborations",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("exchange", sa.String(length=50), nullable=False),
        sa.Column("bank_id", BigId, nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("feedback", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=True),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("full_in_progress", sa.Boolean(), nullable=False),
        sa.Column("last_fetch_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("entries_added", sa.BigInteger(), nullable=False),
        sa.Column("entries_removed", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["bank_id"], ["banks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        **AUTOINCREMENT,
    )
    op.create_table(
        "exchange_records",
        sa.Column("collab_id", BigId, nullable=False),
        sa.Column("record_id", sa.String(length=200), nullable=False),
        sa.Column("signal_type", sa.String(length=16), nullable=True),
        sa.Column("signal_key", SignalKey, nullable=True),
        sa.Column("signal", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["collab_id"], ["collaborations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("collab_id", "record_id"),
    )
    op.create_index(
        "ix_exchange_record_signal",
        "exchange_records",
        ["collab_id", "signal_type", "signal_key"],
        unique=False,
    )
    op.create_table(
        "exchange_quarantine",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("collab_id", BigId, nullable=False),
        sa.Column("record_id", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("retry", sa.Text(), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_tried", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["collab_id"], ["collaborations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        **AUTOINCREMENT,
    )
    op.create_index(
        "ix_exchange_quarantine_collab",
        "exchange_quarantine",
        ["collab_id", "resolved_at"],
        unique=False,
    )
    op.create_table(
        "exchange_opinions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("collab_id", BigId, nullable=False),
        sa.Column("record_id", sa.String(length=200), nullable=False),
        sa.Column("signal_type", sa.String(length=16), nullable=False),
        sa.Column("signal", sa.Text(), nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(length=200), nullable=True),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["collab_id"], ["collaborations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "collab_id", "record_id", "item_id", "verdict", name="uq_exchange_opinion"
        ),
        **AUTOINCREMENT,
    )
    op.create_index(
        "ix_exchange_opinion_due",
        "exchange_opinions",
        ["state", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_index("ix_exchange_opinion_due", table_name="exchange_opinions")
    op.drop_table("exchange_opinions")
    op.drop_index("ix_exchange_quarantine_collab", table_name="exchange_quarantine")
    op.drop_table("exchange_quarantine")
    op.drop_index("ix_exchange_record_signal", table_name="exchange_records")
    op.drop_table("exchange_records")
    op.drop_table("collaborations")
