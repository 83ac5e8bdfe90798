"""Hotline: URL reports, submissions, items, notices, RDAP cache

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 21:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hotline_rdap_cache",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "hotline_reports",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_key", sa.String(length=64), nullable=False),
        sa.Column("open_key", sa.String(length=64), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submissions", sa.Integer(), nullable=False),
        sa.Column("crawled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("crawl_error", sa.Text(), nullable=True),
        sa.Column("crawl_attempts", sa.Integer(), nullable=False),
        sa.Column("next_crawl_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attribution", sa.Text(), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("provider", sa.String(length=255), nullable=True),
        sa.Column("first_notice_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_notice_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notices_sent", sa.Integer(), nullable=False),
        sa.Column("next_notice_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("next_recheck_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recheck_attempts", sa.Integer(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reappearances", sa.Integer(), nullable=False),
        sa.Column("media_urls", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("open_key", name="uq_hotline_report_open"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hotline_report_crawl", "hotline_reports", ["next_crawl_at"], unique=False)
    op.create_index("ix_hotline_report_host", "hotline_reports", ["host"], unique=False)
    op.create_index("ix_hotline_report_notice", "hotline_reports", ["next_notice_at"], unique=False)
    op.create_index(
        "ix_hotline_report_recheck", "hotline_reports", ["next_recheck_at"], unique=False
    )
    op.create_index("ix_hotline_report_status", "hotline_reports", ["status"], unique=False)
    op.create_index("ix_hotline_report_url_key", "hotline_reports", ["url_key"], unique=False)
    op.create_table(
        "hotline_items",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("report_id", BigId, nullable=False),
        sa.Column("media_url", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=True),
        sa.Column("pdq", sa.String(length=64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("mime", sa.String(length=100), nullable=True),
        sa.Column("media_kind", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("matches", sa.Text(), nullable=False),
        sa.Column("evidence_id", sa.BigInteger(), nullable=True),
        sa.Column("assessment", sa.String(length=16), nullable=True),
        sa.Column("jurisdiction", sa.String(length=8), nullable=True),
        sa.Column("assessed_by", sa.String(length=200), nullable=True),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reappearances", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["hotline_reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id", "sha256", name="uq_hotline_item_content"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hotline_item_sha256", "hotline_items", ["sha256"], unique=False)
    op.create_index("ix_hotline_item_status", "hotline_items", ["status"], unique=False)
    op.create_index("ix_hotline_item_evidence", "hotline_items", ["evidence_id"], unique=False)
    op.create_table(
        "hotline_notices",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("report_id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=500), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["hotline_reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hotline_notice_report", "hotline_notices", ["report_id"], unique=False)
    op.create_table(
        "hotline_submissions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("report_id", BigId, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("reporter", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("contact", sa.String(length=320), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["hotline_reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_hotline_submission_report", "hotline_submissions", ["report_id"], unique=False
    )

    op.create_table(
        "hotline_reveals",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("item_id", BigId, nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["hotline_items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_hotline_reveal_reviewer_at", "hotline_reveals", ["reviewer", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_hotline_reveal_reviewer_at", table_name="hotline_reveals")
    op.drop_table("hotline_reveals")
    op.drop_index("ix_hotline_submission_report", table_name="hotline_submissions")
    op.drop_table("hotline_submissions")
    op.drop_index("ix_hotline_notice_report", table_name="hotline_notices")
    op.drop_table("hotline_notices")
    op.drop_index("ix_hotline_item_evidence", table_name="hotline_items")
    op.drop_index("ix_hotline_item_status", table_name="hotline_items")
    op.drop_index("ix_hotline_item_sha256", table_name="hotline_items")
    op.drop_table("hotline_items")
    op.drop_index("ix_hotline_report_url_key", table_name="hotline_reports")
    op.drop_index("ix_hotline_report_status", table_name="hotline_reports")
    op.drop_index("ix_hotline_report_recheck", table_name="hotline_reports")
    op.drop_index("ix_hotline_report_notice", table_name="hotline_reports")
    op.drop_index("ix_hotline_report_host", table_name="hotline_reports")
    op.drop_index("ix_hotline_report_crawl", table_name="hotline_reports")
    op.drop_table("hotline_reports")
    op.drop_table("hotline_rdap_cache")
