"""The models and the migrations agree: a database migrated to head has exactly the tables,
columns and indexes the SQLAlchemy models declare (so no schema change lacks a migration)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from amparo.store import Store
from amparo.store.schema import Base


def _differences(url: str) -> list[object]:
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        store.close()


def test_sqlite_schema_matches_models(tmp_path: Path) -> None:
    assert _differences(f"sqlite:///{tmp_path / 'a.db'}") == []


@pytest.mark.postgres
def test_postgres_schema_matches_models(postgres_url: str) -> None:
    diffs = _differences(postgres_url)
    assert diffs == []


def test_sqlite_ids_are_never_reused(tmp_path: Path) -> None:
    """Every table with an integer id is AUTOINCREMENT on SQLite (migration 0008)."""
    from sqlalchemy import text

    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
            sql = {r[0]: r[1] for r in rows}
    finally:
        store.close()
    with_id = [t.name for t in Base.metadata.sorted_tables if "id" in t.primary_key.columns]
    assert with_id
    assert [n for n in with_id if "AUTOINCREMENT" not in sql[n]] == []


def test_migration_0008_keeps_rows_and_skips_deleted_ids(tmp_path: Path) -> None:
    """Rebuilding the tables keeps every row (no cascade on the drop), and ids deleted before
    the migration (left in entry_tombstones) are not handed out again."""
    from alembic import command
    from sqlalchemy import text

    from amparo.banks.model import EntryRecord
    from amparo.store.db import _alembic_config, make_engine

    url = f"sqlite:///{tmp_path / 'a.db'}"
    engine = make_engine(url)
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")
        conn.execute(
            text(
                "INSERT INTO banks (id, name, description, source, supplier, terms,"
                " enabled, dihedral, kind, created_at, updated_at)"
                " VALUES (1, 'old', '', '', '', '', 1, 0, 'positive', '2026-01-01',"
                " '2026-01-01')"
            )
        )
        conn.execute(
            text("INSERT INTO entry_tombstones (entry_id, signal_type, seq) VALUES (7, 'md5', 1)")
        )
    engine.dispose()
    store = Store(url)
    try:
        assert store.banks.get("old").name == "old"
        store.banks.add_entries("old", [EntryRecord("md5", "a" * 32)], actor="t")
        (entry,) = store.banks.find_exact("md5", ["a" * 32])
        assert entry.id > 7
        store.banks.delete("old", actor="t")
    finally:
        store.close()
