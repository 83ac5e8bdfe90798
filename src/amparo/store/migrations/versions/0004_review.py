"""Cases, case items, decisions, reveals and exposure; negative banks; false-positive counts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "banks",
        sa.Column("kind", sa.String(length=16), nullable=False, server_default="positive"),
    )
    op.create_table(
        "cases",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("group_key", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=True),
        sa.Column("opened_by", sa.String(length=200), nullable=False),
        sa.Column("opened_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_group", "cases", ["group_key", "status"])
    op.create_index("ix_case_queue", "cases", ["status", "priority", "opened_at"])
    op.create_table(
        "case_items",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("case_id", _ID, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("media_kind", sa.String(length=16), nullable=True),
        sa.Column("mime", sa.String(length=100), nullable=True),
        sa.Column("file_name", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("matches", sa.Text(), nullable=False),
        sa.Column("evidence_id", sa.BigInteger(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("first_seen", _AT, nullable=False),
        sa.Column("last_seen", _AT, nullable=False),
        sa.Column("sightings", sa.Integer(), nullable=False),
        sa.Column("viewed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "sha256", name="uq_case_item_content"),
    )
    op.create_index("ix_case_item_sha256", "case_items", ["sha256"])
    op.create_table(
        "review_decisions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("classification", sa.String(length=4), nullable=True),
        sa.Column("annotations", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["case_items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_decision_item", "review_decisions", ["item_id"])
    op.create_table(
        "review_reveals",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["case_items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reveal_reviewer_at", "review_reveals", ["reviewer", "at"])
    op.create_table(
        "review_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("key_name", sa.String(length=100), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("expires_at", _AT, nullable=False),
        sa.Column("last_active_at", _AT, nullable=False),
        sa.Column("streak_started_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_review_session_expires", "review_sessions", ["expires_at"])
    op.create_table(
        "entry_reviews",
        sa.Column("entry_id", _ID, autoincrement=False, nullable=False),
        sa.Column("false_positives", sa.Integer(), nullable=False),
        sa.Column("last_false_positive_at", _AT, nullable=True),
        sa.Column("disabled_at", _AT, nullable=True),
        sa.ForeignKeyConstraint(["entry_id"], ["bank_entries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("entry_id"),
    )


def downgrade() -> None:
    op.drop_table("entry_reviews")
    op.drop_index("ix_review_session_expires", table_name="review_sessions")
    op.drop_table("review_sessions")
    op.drop_index("ix_reveal_reviewer_at", table_name="review_reveals")
    op.drop_table("review_reveals")
    op.drop_index("ix_decision_item", table_name="review_decisions")
    op.drop_table("review_decisions")
    op.drop_index("ix_case_item_sha256", table_name="case_items")
    op.drop_table("case_items")
    op.drop_index("ix_case_queue", table_name="cases")
    op.drop_index("ix_case_group", table_name="cases")
    op.drop_table("cases")
    with op.batch_alter_table("banks") as batch:
        batch.drop_column("kind")
