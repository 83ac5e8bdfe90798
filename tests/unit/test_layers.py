"""The layers of docs/architecture.md hold: each import-linter contract in pyproject.toml
(``[tool.importlinter]``) is kept, so a new upward import, a shell imported by the core, SQL
outside ``amparo.store`` or a new import cycle between modules fails the suite."""

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
    foundation = {"errors", "files", "clock", "names"}
    pure = _contract("pure")
    sources = {m.removeprefix("amparo.") for m in pure["source_modules"]}
    forbidden = {m.removeprefix("amparo.") for m in pure["forbidden_modules"]}
    top_level = {m.name for m in pkgutil.iter_modules(amparo.__path__)}
    assert top_level - foundation - sources == forbidden


def test_no_import_cycle_between_modules() -> None:
    """Every module of amparo and the modules each imports (TYPE_CHECKING imports too): no
    strongly connected component of more than one module (Tarjan's algorithm)."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("amparo", cache_dir=None)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def enter(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)

    for start in sorted(edges):
        if start in index:
            continue
        enter(start)
        work = [(start, iter(edges[start]))]
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    enter(child)
                    work.append((child, iter(edges.get(child, []))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    assert cycles == [], f"import cycles between modules: {cycles}"
