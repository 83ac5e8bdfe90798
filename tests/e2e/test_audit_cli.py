"""``amparo audit`` as an operator (and an outside auditor) uses it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amparo.cli.main import app


@pytest.fixture
def run(tmp_path: Path):
    runner = CliRunner()
    home = tmp_path / "home"

    def invoke(*args: str):
        return runner.invoke(app, ["--home", str(home), *args])

    for name in ("a", "b", "c"):
        assert invoke("bank", "create", name).exit_code == 0
    return invoke


def _db(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "home" / "amparo.db")


def test_verify_export_and_offline_verification(run, tmp_path: Path) -> None:
    result = run("audit", "checkpoint")
    assert result.exit_code == 0 and "position 3" in result.stderr
    key = tmp_path / "home" / "keys" / "audit-signing.key"
    assert key.stat().st_mode & 0o777 == 0o600
    result = run("audit", "verify")
    assert result.exit_code == 0, result.output
    # Each command that wrote signed the head as it ended, and `checkpoint` once more.
    assert "intact: 3 entries, all covered by 4 signed" in result.stderr

    export = tmp_path / "audit.jsonl"
    assert run("audit", "export", "-o", str(export)).exit_code == 0
    pub = tmp_path / "audit.pub"
    assert run("audit", "public-key", "-o", str(pub)).exit_code == 0
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    # The auditor needs no database: the export and the public key are enough.
    result = CliRunner().invoke(
        app, ["audit", "verify", "--file", str(export), "--public-key", str(pub), "--json"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["ok"]

    listing = run("audit", "list", "--json")
    entries = [json.loads(line) for line in listing.stdout.splitlines()]
    assert [e["action"] for e in entries] == ["bank.create"] * 3
    assert [e["seq"] for e in entries] == [3, 2, 1]


@pytest.mark.parametrize(
    ("tamper", "kind"),
    [
        ("UPDATE audit_log SET target = 'z' WHERE seq = 2", "edited"),
        ("DELETE FROM audit_log WHERE seq = 2", "removed"),
        (
            "UPDATE audit_log SET seq = -1 WHERE seq = 1; "
            "UPDATE audit_log SET seq = 1 WHERE seq = 3; "
            "UPDATE audit_log SET seq = 3 WHERE seq = -1",
            "reordered",
        ),
    ],
)
def test_tampering_in_the_database_is_found(run, tmp_path: Path, tamper: str, kind: str) -> None:
    with _db(tmp_path) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM audit_log ORDER BY seq")]
        conn.executescript(tamper)
    result = run("audit", "verify")
    assert result.exit_code == 1
    assert "TAMPERED" in result.stderr and kind in result.stderr
    report = json.loads(run("audit", "verify", "--json").stdout)
    assert not report["ok"] and kind in {p["kind"] for p in report["problems"]}
    assert {p["entry_id"] for p in report["problems"]} <= set(ids)


def test_a_doctored_export_is_found(run, tmp_path: Path) -> None:
    run("audit", "checkpoint")
    export = tmp_path / "audit.jsonl"
    run("audit", "export", "-o", str(export))
    lines = export.read_text().splitlines()
    doctored = [
        line.replace('"actor": "local"', '"actor": "someone"', 1) if i == 2 else line
        for i, line in enumerate(lines)
    ]
    export.write_text("\n".join(doctored) + "\n")
    result = CliRunner().invoke(app, ["audit", "verify", "--file", str(export)])
    assert result.exit_code == 1 and "edited" in result.stderr
