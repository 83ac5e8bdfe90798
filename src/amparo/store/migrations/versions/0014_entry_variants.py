"""Entry variants: PDQ hashes of crops of media added to a bank, stored as rows of the entry

``bank_entries.variant_of`` (the id of the entry a row is a variant of; removed with it) and
``bank_entries.variant`` (which variant: ``crop5-left``, ``crop10-centre``...). A variant's
``signal`` is the crop's hash, which the PDQ index reads as it reads any entry's; its
``signal_key`` is ``<entry id>:<variant>``, never a hash, so it cannot collide with an entry's
key nor be found by an exact lookup (docs/detection.md).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        # Plain ADD COLUMN and a named constraint: no table rewrite on PostgreSQL.
        op.add_column("bank_entries", sa.Column("variant_of", BigId, nullable=True))
        op.add_column("bank_entries", sa.Column("variant", sa.String(length=32), nullable=True))
        op.create_foreign_key(
            "fk_entry_variant_of",
            "bank_entries",
            "bank_entries",
            ["variant_of"],
            ["id"],
            ondelete="CASCADE",
        )
        op.create_index("ix_entry_variant_of", "bank_entries", ["variant_of"], unique=False)
        return
    # SQLite cannot add a table-level foreign key, and one declared inline in ADD COLUMN loses
    # its ON DELETE when read back: the table is rebuilt (batch mode; foreign keys are off
    # while migrations run, see ``amparo.store.db.migrate``), ids never reused (0008). The
    # rebuild copies the table once: seconds for a million entries.
    high = _sequence(conn)
    with op.batch_alter_table(
        "bank_entries", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.add_column(sa.Column("variant_of", BigId, nullable=True))
        batch.add_column(sa.Column("variant", sa.String(length=32), nullable=True))
        batch.create_foreign_key(
            "fk_entry_variant_of", "bank_entries", ["variant_of"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_entry_variant_of", ["variant_of"], unique=False)
    _restore_sequence(conn, high)


def downgrade() -> None:
    conn = op.get_bind()
    high = _sequence(conn) if conn.dialect.name == "sqlite" else 0
    op.drop_index("ix_entry_variant_of", table_name="bank_entries")
    with op.batch_alter_table("bank_entries", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint("fk_entry_variant_of", type_="foreignkey")
        batch.drop_column("variant")
        batch.drop_column("variant_of")
    if conn.dialect.name == "sqlite":
        _restore_sequence(conn, high)


def _sequence(conn: sa.Connection) -> int:
    """The highest entry id SQLite has handed out (deleted ones included)."""
    value = conn.execute(
        sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'bank_entries'")
    ).scalar()
    return int(value or 0)


def _restore_sequence(conn: sa.Connection, high: int) -> None:
    """A rebuilt table starts its sequence at its highest id: put back the higher one, so
    the id of an entry deleted before the migration is not handed out again."""
    if high and high > _sequence(conn):
        conn.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'bank_entries'"))
        conn.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('bank_entries', :high)"),
            {"high": high},
        )
