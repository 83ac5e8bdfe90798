"""`amparo evidence ...` as an operator drives it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amparo.cli.main import app


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    home = tmp_path / "home"

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["--home", str(home), "evidence", *args])

    return invoke


def _json(output: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_help_has_examples() -> None:
    runner = CliRunner()
    for command in ("preserve", "list", "show", "read", "hold", "release", "discard", "purge"):
        result = runner.invoke(app, ["evidence", command, "--help"])
        assert result.exit_code == 0 and "Example" in result.output, command
    for command in ("rotate-key", "verify"):
        result = runner.invoke(app, ["evidence", command, "--help"])
        assert result.exit_code == 0 and "Example" in result.output, command


def test_preserve_read_hold_purge_rotate_verify(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "upload.jpg"
    data = os.urandom(200_000)
    src.write_bytes(data)
    result = run("preserve", str(src), "--reason", "manual: ticket 7", "--account-id", "42")
    assert result.exit_code == 0, result.output
    item = _json(result.stdout)[0]
    assert item["source"]["account_id"] == "42" and item["file_name"] == "upload.jpg"

    out = tmp_path / "out.bin"
    result = run("read", str(item["id"]), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == data and stat.S_IMODE(out.stat().st_mode) == 0o600
    result = run("read", str(item["id"]), "-o", str(out))
    assert result.exit_code == 2 and "exists" in result.output

    listed = run("list", "--json")
    assert [i["id"] for i in _json(listed.stdout)] == [item["id"]]
    assert "manual:" in run("list").stdout
    shown = _json(run("show", str(item["id"])).stdout)[0]
    assert shown["sighting_log"][0]["actor"].startswith("local")

    held = _json(run("hold", str(item["id"]), "--reason", "court order").stdout)[0]
    assert held["legal_hold"] is True
    result = run("discard", str(item["id"]), "--reason", "fp")
    assert result.exit_code == 2 and "legal hold" in result.output
    assert _json(run("release", str(item["id"])).stdout)[0]["legal_hold"] is False

    rotated = _json(run("rotate-key", "--retire").stdout)[0]
    assert rotated["rewrapped"] == 1 and len(rotated["retired"]) == 1
    verified = run("verify")
    assert verified.exit_code == 0 and _json(verified.stdout)[0]["ok"] is True

    purge = _json(run("purge", "--dry-run").stdout)[0]
    assert purge["purged"] == [] and purge["dry_run"] is True

    result = run("read", "999", "-o", str(tmp_path / "x"))
    assert result.exit_code == 2 and "no evidence item 999" in result.output


def test_verify_fails_loudly_on_a_missing_blob(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "f.bin"
    src.write_bytes(b"content")
    assert run("preserve", str(src)).exit_code == 0
    for blob in (tmp_path / "home" / "evidence").rglob("*.amev"):
        blob.unlink()
    result = run("verify", "--quick")
    assert result.exit_code == 2
    assert _json(result.stdout)[0]["missing"] == [1]
    assert "missing" in result.output


def test_verify_only_reports_orphans_and_repair_removes_them(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "f.bin"
    src.write_bytes(b"content")
    assert run("preserve", str(src)).exit_code == 0
    (blob,) = (tmp_path / "home" / "evidence").rglob("*.amev")
    orphan = blob.with_name("0" * 32 + ".amev")
    orphan.write_bytes(b"left by a crash")
    result = run("verify", "--orphan-grace", "0")
    assert result.exit_code == 0, result.output
    body = _json(result.stdout)[0]
    assert len(body["orphans"]) == 1 and body["orphans_removed"] is False
    assert orphan.exists()  # a verify only reports
    result = run("verify", "--orphan-grace", "0", "--repair")
    assert result.exit_code == 0 and _json(result.stdout)[0]["orphans_removed"] is True
    assert not orphan.exists() and blob.exists()
