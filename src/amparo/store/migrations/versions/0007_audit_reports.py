"""Hash-chained audit log with signed checkpoints; report drafts and submissions

Existing audit entries are numbered in id order and chained (see ``amparo.store.audit``); the
hash function is copied here so this migration keeps computing what it computed when written.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 02:00:00
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GENESIS = "0" * 64


def _hash(
    seq: int, at: datetime, actor: str, action: str, target: str, details: str, prev: str
) -> str:
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    body = {
        "seq": seq,
        "at": at.isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "target": target,
        "details": details,
        "prev_hash": prev,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))

    conn = op.get_bind()
    log = sa.table(
        "audit_log",
        sa.column("id", sa.BigInteger()),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("actor", sa.String()),
        sa.column("action", sa.String()),
        sa.column("target", sa.Text()),
        sa.column("details", sa.Text()),
        sa.column("seq", sa.BigInteger()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    prev, seq, last_id = GENESIS, 0, 0
    while True:
        rows = conn.execute(
            sa.select(log).where(log.c.id > last_id).order_by(log.c.id).limit(5000)
        ).all()
        if not rows:
            break
        for r in rows:
            seq += 1
            digest = _hash(seq, r.at, r.actor, r.action, r.target, r.details, prev)
            conn.execute(
                sa.update(log).where(log.c.id == r.id).values(seq=seq, prev_hash=prev, hash=digest)
            )
            prev, last_id = digest, int(r.id)
    counters = sa.table(
        "counters", sa.column("name", sa.String()), sa.column("value", sa.BigInteger())
    )
    conn.execute(sa.delete(counters).where(counters.c.name == "audit_seq"))
    conn.execute(sa.insert(counters).values(name="audit_seq", value=seq))

    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index("ix_audit_seq", ["seq"], unique=True)
        batch_op.create_index("ix_audit_target", ["target"], unique=False)

    op.create_table(
        "audit_checkpoints",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_checkpoint_seq", "audit_checkpoints", ["seq"], unique=False)
    op.create_table(
        "reports",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("built_by", sa.String(length=200), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_report_case", "reports", ["case_id"], unique=False)
    op.create_table(
        "report_submissions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("report_id", BigId, nullable=False),
        sa.Column("destination", sa.String(length=50), nullable=False),
        sa.Column("environment", sa.String(length=20), nullable=False),
        sa.Column("base_url", sa.Text(), nullable=False),
        sa.Column("remote_id", sa.String(length=100), nullable=True),
        sa.Column("files", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retracted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id"),
    )


def downgrade() -> None:
    op.drop_table("report_submissions")
    op.drop_index("ix_report_case", table_name="reports")
    op.drop_table("reports")
    op.drop_index("ix_audit_checkpoint_seq", table_name="audit_checkpoints")
    op.drop_table("audit_checkpoints")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_target")
        batch_op.drop_index("ix_audit_seq")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
    counters = sa.table("counters", sa.column("name", sa.String()))
    op.get_bind().execute(sa.delete(counters).where(counters.c.name == "audit_seq"))
