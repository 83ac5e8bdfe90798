"""The layers of docs/architecture.md hold: each import-linter contract in pyproject.toml
(``[tool.importlinter]``) is kept, so a new upward import, a shell imported by the core, SQL
outside ``amparo.store`` or a new cycle between top-level packages fails the suite."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import amparo

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS: list[dict[str, Any]] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
    "importlinter"
]["contracts"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _contract(contract_id: str) -> dict[str, Any]:
    return next(c for c in CONTRACTS if c["id"] == contract_id)


@pytest.mark.parametrize("contract_id", [c["id"] for c in CONTRACTS])
def test_the_layering_contract_is_kept(contract_id: str) -> None:
    if not LINT_IMPORTS.exists():
        pytest.skip("import-linter is not installed: pip install -e '.[test]'")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--contract", contract_id],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = result.stdout[result.stdout.find("Contracts") :]
    assert result.returncode == 0, f"{_contract(contract_id)['name']}\n{report}"


def test_every_top_level_module_is_placed_in_the_layers() -> None:
    """The contract that keeps signals, media and index pure forbids every module above them
    by name: a new top-level module must be added there (or to the foundation) deliberately."""
    foundation = {"errors", "files", "clock"}
    pure = _contract("pure")
    sources = {m.removeprefix("amparo.") for m in pure["source_modules"]}
    forbidden = {m.removeprefix("amparo.") for m in pure["forbidden_modules"]}
    top_level = {m.name for m in pkgutil.iter_modules(amparo.__path__)}
    assert top_level - foundation - sources == forbidden
