"""Shared fixtures: settings in a temporary home, and a store on every database we can reach."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from amparo.config import Settings, load_settings

POSTGRES_URL = os.environ.get(
    "AMPARO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REFERENCE_DIR = Path(
    os.environ.get(
        "AMPARO_REFERENCE_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "reference"
    )
)


def _postgres_reachable() -> bool:
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    if not _postgres_reachable():
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty schema in the test database, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(postgres_admin_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = make_url(postgres_admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database migrated to the newest schema, which each test's database starts
    as a copy of: migrating a fresh file costs about half a second, a thousand times a run.
    (The migrations themselves are tested from empty databases in test_schema.py.)"""
    from amparo.store.db import make_engine, migrate

    path = tmp_path_factory.mktemp("migrated") / "amparo.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        migrate(engine)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return path


def seeded_sqlite(template: Path, db: Path) -> Path:
    """``db`` as a private copy of the migrated ``template`` (a home is created 0700, as the
    application would)."""
    db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(template, db)
    db.chmod(0o600)
    return db


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on SQLite and, when reachable, on PostgreSQL."""
    if request.param == "sqlite":
        template = request.getfixturevalue("migrated_sqlite")
        return f"sqlite:///{seeded_sqlite(template, tmp_path / 'amparo.db')}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(
        env={}, overrides={"home": tmp_path / "home", "database_url": database_url}
    )


@pytest.fixture
def sqlite_settings(tmp_path: Path, migrated_sqlite: Path) -> Settings:
    seeded_sqlite(migrated_sqlite, tmp_path / "home" / "amparo.db")
    return load_settings(env={}, overrides={"home": tmp_path / "home"})


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE_DIR}")
    return REFERENCE_DIR
