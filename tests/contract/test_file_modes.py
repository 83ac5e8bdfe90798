"""Issue #12 point 6: the data directory is 0700 and every file Amparo creates in it 0600,
whatever the umask (it holds hash lists, secrets, keys and evidence)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from amparo.api import create_app
from amparo.app import Amparo
from amparo.banks.model import BankInfo, EntryRecord
from amparo.config import Settings, load_settings


@pytest.fixture
def lax_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: files 0644, directories 0755
    try:
        yield
    finally:
        os.umask(old)


def _modes(home: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(home.stat().st_mode)}
    for p in home.rglob("*"):
        found[str(p.relative_to(home))] = stat.S_IMODE(p.lstat().st_mode)
    return found


def _assert_private(home: Path) -> None:
    modes = _modes(home)
    wrong = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o700 if (home / name).is_dir() else 0o600)
    }
    assert wrong == {}


@pytest.mark.slow
def test_everything_created_under_home_is_private(tmp_path: Path, lax_umask: None) -> None:
    home = tmp_path / "deep" / "home"
    settings = load_settings(env={}, overrides={"home": home, "audit_checkpoint_every": 1})
    with Amparo(settings) as app:
        app.banks.create(BankInfo(name="b"), actor="t")
        app.store.banks.add_entries("b", [EntryRecord("pdq", "f" * 64)], actor="t")
        app.matcher.refresh()
        assert app.matcher.indexes.compact()
        app.evidence.preserve(b"synthetic bytes", reason="manual", actor="t")
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/health").status_code in (200, 404)
    names = set(_modes(home))
    assert {"amparo.db", "index", "evidence", "keys"} <= {n.split("/")[0] for n in names}
    assert any(n.startswith("index/") and n.count("/") >= 2 for n in names)  # segment files
    assert stat.S_IMODE((tmp_path / "deep").stat().st_mode) == 0o700  # created parents too
    _assert_private(home)


def test_an_existing_home_open_to_others_is_tightened(
    tmp_path: Path, lax_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    db = home / "amparo.db"
    with Amparo(Settings(home=home)):
        pass
    os.chmod(db, 0o644)
    os.chmod(home, 0o755)
    with Amparo(Settings(home=home)):
        pass
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert "tightened" in caplog.text
