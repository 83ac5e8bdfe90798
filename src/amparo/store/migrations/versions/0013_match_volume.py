"""Match volume per bank per day; index on entry source ids

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Counts only: no hash, path or anything else of the content matched.
    op.create_table(
        "match_volume",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("bank_id", BigId, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("matches", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["bank_id"], ["banks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("day", "bank_id", "source"),
    )
    # The console searches entries by source id; without it that part read the whole table.
    # A hash index on PostgreSQL: equality is all it serves, and a B-tree entry is limited
    # to ~2.7 kB (an imported source id may be longer).
    op.create_index(
        "ix_entry_source_id",
        "bank_entries",
        ["source_id"],
        unique=False,
        postgresql_using="hash",
    )


def downgrade() -> None:
    op.drop_index("ix_entry_source_id", table_name="bank_entries")
    op.drop_table("match_volume")
