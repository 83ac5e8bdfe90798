"""The ``amparo`` command imports on demand (issue #18): ``--version``, ``--help`` and ``hash``
load none of the app's heavy dependencies, and the table that lists commands without
importing them says what the commands themselves say."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer.main
from PIL import Image
from typer.core import TyperGroup
from typer.testing import CliRunner

from amparo import __version__
from amparo.cli.commands import COMMANDS
from amparo.cli.main import app

# Runs the real entry point with the given arguments, then reports what was imported.
WRAPPER = """
import json, sys
sys.argv = ["amparo", *sys.argv[1:]]
from amparo.cli.main import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
sys.stderr.write("\\nMODULES " + json.dumps({"code": code, "modules": sorted(sys.modules)}) + "\\n")
"""

# What a command line that does not need the app must never pay for.
HEAVY = ("sqlalchemy", "alembic", "fastapi", "starlette", "numba", "av", "jinja2", "amparo.app")


def imported_by(*args: str) -> tuple[int, set[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = done.stderr.rsplit("MODULES ", 1)[-1]
    report = json.loads(line)
    return report["code"], set(report["modules"]), done.stdout


def loaded(modules: set[str], *roots: str) -> list[str]:
    return [root for root in roots if any(m == root or m.startswith(f"{root}.") for m in modules)]


def test_version_imports_nothing_but_amparo() -> None:
    code, modules, out = imported_by("--version")
    assert (code, out) == (0, f"amparo {__version__}\n")
    assert loaded(modules, *HEAVY, "typer", "rich", "pydantic", "numpy") == []


def test_help_lists_every_command_without_importing_one() -> None:
    code, modules, out = imported_by("--help")
    assert code == 0
    for row in COMMANDS:
        assert row.name in out
    assert loaded(modules, *HEAVY, "pydantic", "numpy") == []
    assert {row.module for row in COMMANDS}.isdisjoint(modules)


def test_hash_imports_only_hashing(tmp_path: Path) -> None:
    photo = tmp_path / "one.jpg"
    pixels = (np.indices((64, 64)).sum(axis=0) * 2 % 256).astype(np.uint8)
    Image.fromarray(pixels).convert("RGB").save(photo)
    code, modules, out = imported_by("hash", str(photo))
    assert code == 0
    assert json.loads(out)["path"] == str(photo)
    # pydantic is Typer's own (it coerces parameter values with it), not the app's
    assert loaded(modules, *HEAVY, "rich") == []
    other_commands = {row.module for row in COMMANDS} - {"amparo.cli.hashcmd"}
    assert other_commands.isdisjoint(modules)


def test_the_fast_version_says_what_typer_says() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert (result.exit_code, result.output) == (0, f"amparo {__version__}\n")


@pytest.mark.parametrize("row", COMMANDS, ids=lambda row: row.name)
def test_each_summary_is_the_first_paragraph_of_the_commands_help(row: object) -> None:
    from amparo.cli.lazy import LazyCommand

    assert isinstance(row, LazyCommand)
    command = row.load()
    assert command.name == row.name
    first = inspect.cleandoc(command.help or "").split("\n\n")[0].replace("\n", " ")
    assert first == row.summary
    assert isinstance(command, TyperGroup) == row.group


def test_the_group_has_each_command_once_in_table_order() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    names = [row.name for row in COMMANDS]
    assert len(set(names)) == len(names)
    assert list(group.commands) == names
    assert "hash" in group.commands and "nonesuch" not in group.commands
    assert group.get_command(typer.Context(group), "nonesuch") is None
