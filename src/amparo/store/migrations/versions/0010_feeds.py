"""Federation feeds, grants, opinions, acknowledgements; entry provenance

``bank_entries.provenance`` (JSON text: origin organisation, verifier, classification,
jurisdiction, legal basis, time and the path of organisations it passed through) and an
index on ``(bank_id, seq, id)`` that serves a feed's pages (a bank's change log in order).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild): instant on SQLite and PostgreSQL at any size.
    op.add_column("bank_entries", sa.Column("provenance", sa.Text(), nullable=True))
    op.create_index("ix_entry_bank_seq", "bank_entries", ["bank_id", "seq", "id"], unique=False)
    op.create_table(
        "feeds",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("bank_id", BigId, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["bank_id"], ["banks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "feed_grants",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("feed_id", BigId, nullable=False),
        sa.Column("key_name", sa.String(length=100), nullable=False),
        sa.Column("partner_public_key", sa.Text(), nullable=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ack_cursor", sa.String(length=50), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("feed_id", "key_name", name="uq_feed_grant"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "feed_opinions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("feed_id", BigId, nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("key_name", sa.String(length=100), nullable=False),
        sa.Column("partner", sa.String(length=200), nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("feed_id", "entry_id", "key_name", name="uq_feed_opinion"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_feed_opinion_entry", "feed_opinions", ["entry_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_feed_opinion_entry", table_name="feed_opinions")
    op.drop_table("feed_opinions")
    op.drop_table("feed_grants")
    op.drop_table("feeds")
    op.drop_index("ix_entry_bank_seq", table_name="bank_entries")
    with op.batch_alter_table("bank_entries", schema=None) as batch_op:
        batch_op.drop_column("provenance")
