"""Entries are unique by signal_key (the signal, or the SHA-256 of a long one such as vPDQ)

PostgreSQL cannot put kilobytes-long values in a B-tree index, so uniqueness and exact lookups
move from ``signal`` to ``signal_key``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 01:00:00
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

KEY_MAX = 128


def upgrade() -> None:
    key_type = sa.String(128).with_variant(sa.String(128, collation="C"), "postgresql")
    with op.batch_alter_table("bank_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signal_key", key_type, nullable=True))
    conn = op.get_bind()
    conn.execute(
        sa.text("UPDATE bank_entries SET signal_key = signal WHERE length(signal) <= :n"),
        {"n": KEY_MAX},
    )
    long_rows = conn.execute(
        sa.text("SELECT id, signal FROM bank_entries WHERE length(signal) > :n"), {"n": KEY_MAX}
    ).all()
    for row_id, signal in long_rows:
        key = "sha256:" + hashlib.sha256(signal.encode()).hexdigest()
        conn.execute(
            sa.text("UPDATE bank_entries SET signal_key = :k WHERE id = :i"),
            {"k": key, "i": row_id},
        )
    with op.batch_alter_table("bank_entries", schema=None) as batch_op:
        batch_op.alter_column("signal_key", existing_type=key_type, nullable=False)
        batch_op.drop_constraint("uq_entry_signal", type_="unique")
        batch_op.create_unique_constraint(
            "uq_entry_signal_key", ["signal_type", "signal_key", "bank_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("bank_entries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_entry_signal_key", type_="unique")
        batch_op.create_unique_constraint("uq_entry_signal", ["signal_type", "signal", "bank_id"])
        batch_op.drop_column("signal_key")
