"""Retroactive matching hashes; share-back proposals

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SignalKey = sa.String(128).with_variant(sa.String(128, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "retro_hashes",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("signals", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256", name="uq_retro_hash_sha256"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_retro_hash_checked_at", "retro_hashes", ["checked_at"], unique=False)
    op.create_table(
        "retro_signals",
        sa.Column("hash_id", BigId, nullable=False),
        sa.Column("signal_type", sa.String(length=16), nullable=False),
        sa.Column("signal_key", SignalKey, nullable=False),
        sa.ForeignKeyConstraint(["hash_id"], ["retro_hashes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("hash_id", "signal_type"),
    )
    op.create_index(
        "ix_retro_signal_value", "retro_signals", ["signal_type", "signal_key"], unique=False
    )
    op.create_table(
        "retro_finds",
        sa.Column("hash_id", BigId, nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["hash_id"], ["retro_hashes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("hash_id", "entry_id"),
    )
    op.create_table(
        "bank_proposals",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("item_id", BigId, nullable=False),
        sa.Column("bank_id", BigId, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("pending_key", sa.String(length=64), nullable=True),
        sa.Column("proposed_by", sa.String(length=200), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("jurisdiction", sa.String(length=8), nullable=True),
        sa.Column("entries", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["case_items.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["bank_id"], ["banks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pending_key", name="uq_bank_proposal_pending"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_bank_proposal_state", "bank_proposals", ["state"], unique=False)
    op.create_index("ix_bank_proposal_item", "bank_proposals", ["item_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_bank_proposal_item", table_name="bank_proposals")
    op.drop_index("ix_bank_proposal_state", table_name="bank_proposals")
    op.drop_table("bank_proposals")
    op.drop_table("retro_finds")
    op.drop_index("ix_retro_signal_value", table_name="retro_signals")
    op.drop_table("retro_signals")
    op.drop_index("ix_retro_hash_checked_at", table_name="retro_hashes")
    op.drop_table("retro_hashes")
    op.execute("DELETE FROM counters WHERE name = 'retro_seq'")
