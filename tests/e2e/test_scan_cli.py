"""``amparo scan`` as a user runs it: reports in every format, exit codes, progress and
summary on stderr, and a real process killed half way then resumed. Synthetic images only."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amparo import Amparo, BankInfo, load_settings
from amparo.cli.main import app
from media_support import synthetic_jpeg

KNOWN = synthetic_jpeg(1, 256)
BAD_NAME = "<i>text&'.jpg"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        amparo.banks.create(BankInfo(name="known"))
        amparo.banks.add_media("known", KNOWN, category="test")
        amparo.banks.create(BankInfo(name="empty"))
    return home


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    root = tmp_path / "evidence"
    root.mkdir()
    (root / "k.jpg").write_bytes(KNOWN)
    (root / "u.jpg").write_bytes(synthetic_jpeg(2, 64))
    (root / "plain.txt").write_text("plain text")
    with zipfile.ZipFile(root / "a.zip", "w") as zf:
        zf.writestr("inside/k.jpg", KNOWN)
    (root / BAD_NAME).write_text("not an image")
    return root


def invoke(home: Path, *args: str):
    return CliRunner().invoke(app, ["--home", str(home), "scan", "--workers", "1", *args])


def _jsonl(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_jsonl_report_on_stdout_and_summary_on_stderr(home: Path, evidence: Path):
    result = invoke(home, str(evidence))
    assert result.exit_code == 1, result.output
    records = _jsonl(result.stdout)
    matches = {(r["path"], r["signal_type"]) for r in records if r["kind"] == "match"}
    assert matches == {
        (f"{evidence}/k.jpg", "pdq"),
        (f"{evidence}/k.jpg", "md5"),
        (f"{evidence}/a.zip!inside/k.jpg", "pdq"),
        (f"{evidence}/a.zip!inside/k.jpg", "md5"),
    }
    assert [r["path"] for r in records if r["kind"] == "error"] == [f"{evidence}/{BAD_NAME}"]
    assert records[-1]["kind"] == "summary" and records[-1]["files_seen"] == 6
    assert "2 matched" in result.stderr and "Journal:" in result.stderr


def test_report_files_in_every_format(home: Path, evidence: Path, tmp_path: Path):
    for name in ("r.jsonl", "r.csv", "r.html"):
        report = tmp_path / "out" / name
        result = invoke(home, str(evidence), "--report", str(report))
        assert result.exit_code == 1, result.output
        assert result.stdout == ""
        assert report.stat().st_mode & 0o077 == 0
        assert Path(f"{report}.journal").exists()
    assert (
        len([r for r in _jsonl((tmp_path / "out/r.jsonl").read_text()) if r["kind"] == "match"])
        == 4
    )
    rows = list(csv.DictReader((tmp_path / "out/r.csv").open()))
    # Files, then the facts about the scan (totals, settings, bank provenance).
    assert sorted({r["kind"] for r in rows}) == ["bank", "error", "match", "setting", "summary"]
    page = (tmp_path / "out/r.html").read_text()
    assert "<img" not in page and "data:" not in page
    assert "inside/k.jpg" in page
    assert "&lt;i&gt;text&amp;&#x27;.jpg" in page and "<i>" not in page
    forced = tmp_path / "out" / "forced.txt"
    assert invoke(home, str(evidence), "--report", str(forced), "--format", "csv").exit_code == 1
    assert forced.read_text().startswith("kind,path,")


def test_exit_codes(home: Path, evidence: Path, tmp_path: Path):
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "u.jpg").write_bytes(synthetic_jpeg(3, 64))
    assert invoke(home, str(clean)).exit_code == 0
    assert invoke(home, str(evidence), "--bank", "empty").exit_code == 2  # text.jpg, no match
    assert invoke(home, str(evidence), "--bank", "known").exit_code == 1
    missing = invoke(home, str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "not_found" in missing.stdout
    unknown = invoke(home, str(evidence), "--bank", "nope")
    assert unknown.exit_code == 2 and "no bank named" in unknown.stderr


def _journal_items(path: Path) -> list[dict[str, object]]:
    items = []
    for line in path.read_text().splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if obj.get("kind") == "item":
            items.append(obj)
    return items


def test_real_process_killed_half_way_resumes(home: Path, tmp_path: Path):
    root = tmp_path / "many"
    root.mkdir()
    (root / "000-known.jpg").write_bytes(KNOWN)
    for i in range(1, 700):
        (root / f"{i:03}.jpg").write_bytes(synthetic_jpeg(1000 + i, size=32))
    report = tmp_path / "report.jsonl"
    journal = Path(f"{report}.journal")
    base = [sys.executable, "-m", "amparo.cli.main", "--home", str(home), "scan", str(root)]
    args = [*base, "--report", str(report), "--workers", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and len(_journal_items(journal)) >= 256:
            proc.send_signal(signal.SIGKILL)  # no chance to clean up
            break
        time.sleep(0.01)
    proc.wait(timeout=60)
    if proc.returncode != -signal.SIGKILL:  # finished first on a fast machine: cut it back
        lines = journal.read_text().splitlines(keepends=True)
        journal.write_text("".join(lines[:257]))
    done_before = len(_journal_items(journal))
    assert 256 <= done_before < 700
    assert not report.exists()

    resumed = subprocess.run(
        [*args, "--resume"], env=env, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 1, resumed.stderr
    records = _jsonl(report.read_text())
    summary = records[-1]
    assert summary["resumed"] == done_before and summary["files_seen"] == 700
    assert {r["path"] for r in records if r["kind"] == "match"} == {f"{root}/000-known.jpg"}
    items = _journal_items(journal)
    assert len(items) == 700 and len({i["path"] for i in items}) == 700  # nothing twice
    assert "from an earlier run" in resumed.stderr


def test_subprocess_with_worker_processes_and_plain_progress(home: Path, evidence: Path):
    command = [sys.executable, "-m", "amparo.cli.main", "--home", str(home), "scan"]
    proc = subprocess.run(
        [*command, str(evidence), "--workers", "2", "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert {r["path"] for r in rows if r["kind"] == "match"} == {
        f"{evidence}/k.jpg",
        f"{evidence}/a.zip!inside/k.jpg",
    }
    assert "\x1b[" not in proc.stderr  # not a terminal: no progress bar escapes
    assert "Scanned 6 files" in proc.stderr
