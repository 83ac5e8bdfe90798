"""Never-reused ids on SQLite (AUTOINCREMENT); report submissions claimed under a lease;
webhook secrets stored sealed (Text)

SQLite hands out ``max(id) + 1`` for an ``INTEGER PRIMARY KEY``, so the id of a deleted row
comes back for the next insert: a bank entry deleted with its bank and re-added got its old
id, and the next bank delete failed on ``entry_tombstones`` (issue #12, point 9); a case, an
audit entry or a report pointing at the old row would silently point at the new one.
``AUTOINCREMENT`` makes SQLite never reuse an id. Every table with an integer id is rebuilt
(batch mode); PostgreSQL sequences never reuse ids, so nothing changes there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Parents before children does not matter (foreign keys are off while this runs, see
# ``amparo.store.db.migrate``), but keep the order stable and readable.
TABLES = (
    "api_keys",
    "banks",
    "bank_entries",
    "audit_log",
    "action_rules",
    "actions_taken",
    "webhook_endpoints",
    "webhook_outbox",
    "evidence_items",
    "evidence_sightings",
    "audit_checkpoints",
    "reports",
    "report_submissions",
    "cases",
    "case_items",
    "review_decisions",
    "review_reveals",
)


def upgrade() -> None:
    # Report submissions are claimed under a lease (two submitters must not both file).
    with op.batch_alter_table("report_submissions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    # Webhook signing secrets are stored sealed (longer than the 200 characters of before).
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.alter_column("secret", existing_type=sa.String(length=200), type_=sa.Text())
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return
    for name in TABLES:
        with op.batch_alter_table(
            name, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass
    # Ids already handed out and deleted before this migration must not come back either:
    # an entry deleted with its bank left its id in entry_tombstones.
    high = conn.execute(
        sa.text(
            "SELECT max(coalesce((SELECT max(id) FROM bank_entries), 0),"
            " coalesce((SELECT max(entry_id) FROM entry_tombstones), 0))"
        )
    ).scalar_one()
    if high:
        conn.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'bank_entries'"))
        conn.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('bank_entries', :high)"),
            {"high": int(high)},
        )


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        for name in TABLES:
            with op.batch_alter_table(
                name, recreate="always", table_kwargs={"sqlite_autoincrement": False}
            ):
                pass
    with op.batch_alter_table("report_submissions", schema=None) as batch_op:
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claim_token")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.alter_column("secret", existing_type=sa.Text(), type_=sa.String(length=200))
