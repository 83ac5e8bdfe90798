"""One of each thing (#13): the helpers that had copies exist once, and the demo stays a shell.
Each test is the grep that would find a new copy."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import amparo
from amparo.errors import InputError
from amparo.names import validate_name

SRC = Path(amparo.__file__).parent


def _defined(name: str) -> list[str]:
    """The modules that define a top-level function ``name``."""
    found = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body):
            found.append(str(path.relative_to(SRC)))
    return sorted(found)


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("fsync_dir", "files.py"),
        ("utc_now", "clock.py"),
        ("media_kind", "media/sniff.py"),
        ("validate_name", "names.py"),
    ],
)
def test_defined_once(name: str, home: str) -> None:
    assert _defined(name) == [home]


def test_no_private_copies() -> None:
    copies = {n: _defined(n) for n in ("_fsync_dir", "kind_of", "utc", "validate_key_name")}
    # store/audit.py's utc() goes with the storage split (#13 point 4): clock.as_utc replaces it.
    copies["utc"] = [m for m in copies["utc"] if m != "store/audit.py"]
    assert {n: m for n, m in copies.items() if m} == {}


def test_nothing_imports_the_demo() -> None:
    importers = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name != "demo.py"
        and re.search(
            r"^\s*(from amparo(\.demo| import demo)|import amparo\.demo)",
            path.read_text(encoding="utf-8"),
            re.M,
        )
    ]
    assert importers == []


@pytest.mark.parametrize("name", ["", "-x", ".hidden", "a b", "ñandú", "x" * 101, 7])
def test_one_name_rule(name: object) -> None:
    with pytest.raises(InputError, match="invalid key name"):
        validate_name(name, "key")


def test_a_good_name_passes() -> None:
    assert validate_name("Team_1.csam-list", "bank") == "Team_1.csam-list"
