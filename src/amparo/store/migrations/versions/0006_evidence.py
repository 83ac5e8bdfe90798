"""Evidence items: envelope-encrypted preserved content, retention and legal hold

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "evidence_items",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("live_sha256", sa.String(length=64), nullable=True),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mime", sa.String(length=100), nullable=True),
        sa.Column("media_kind", sa.String(length=20), nullable=True),
        sa.Column("file_name", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("matches", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("preserved_by", sa.String(length=200), nullable=False),
        sa.Column("preserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.Column("hold_reason", sa.Text(), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purge_reason", sa.Text(), nullable=True),
        sa.Column("format_version", sa.Integer(), nullable=False),
        sa.Column("blob_size", sa.BigInteger(), nullable=False),
        sa.Column("kek_id", sa.String(length=64), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
        sa.UniqueConstraint("live_sha256"),
    )
    op.create_index("ix_evidence_sha256", "evidence_items", ["sha256"])
    op.create_index("ix_evidence_expires", "evidence_items", ["expires_at"])
    op.create_index("ix_evidence_case", "evidence_items", ["case_id"])
    op.create_table(
        "evidence_sightings",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("matches", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["evidence_items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_evidence_sighting_item", "evidence_sightings", ["item_id"])


def downgrade() -> None:
    op.drop_index("ix_evidence_sighting_item", table_name="evidence_sightings")
    op.drop_table("evidence_sightings")
    op.drop_index("ix_evidence_case", table_name="evidence_items")
    op.drop_index("ix_evidence_expires", table_name="evidence_items")
    op.drop_index("ix_evidence_sha256", table_name="evidence_items")
    op.drop_table("evidence_items")
