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
