"""File names that are not UTF-8 (common on seized Windows and Latin-1 drives) are scanned,
written to every report format exactly (``path_b64``) and readably (``path`` with ``\\xNN``),
kept exactly in the journal, and recognised by ``--resume``. Synthetic images only."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from amparo import Amparo, BankInfo, load_settings
from media_support import synthetic_jpeg

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX names are bytes")


KNOWN = synthetic_jpeg(1)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        amparo.banks.create(BankInfo(name="known"))
        amparo.banks.add_media("known", KNOWN, category="test")
    return home


def tar_with_member(name: bytes, data: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo(os.fsdecode(name))
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def scan(home: Path, root: Path, report: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "amparo.cli.main", "--home", str(home), "scan", str(root)]
    return subprocess.run(
        [*command, "--report", str(report), "--workers", "1", *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_names_that_are_not_utf8_are_reported_exactly_and_resumed(home: Path, tmp_path: Path):
    root = tmp_path / "evidence"
    root.mkdir()
    broot = os.fsencode(root)
    latin1 = broot + b"/caf\xe9.jpg"  # "café.jpg" from a Latin-1 drive
    with open(latin1, "wb") as fh:
        fh.write(KNOWN)
    with open(broot + b"/not-an-image-\xff.jpg", "wb") as fh:
        fh.write(b"plain text")
    with open(broot + b"/archive.tar", "wb") as fh:
        fh.write(tar_with_member(b"d\xe9j\xe0-vu.jpg", KNOWN))
    (root / "ordinary-\u00e9.txt").write_text("a UTF-8 name needs no path_b64")
    member = broot + b"/archive.tar!d\xe9j\xe0-vu.jpg"

    jsonl = tmp_path / "report.jsonl"
    proc = scan(home, root, jsonl, "--case", "T-1")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    case = json.loads((tmp_path / "T-1.vics.json").read_text(encoding="utf-8"))
    files = [f["FilePath"] for m in case["value"][0]["Media"] for f in m["MediaFiles"]]
    assert f"{root}/caf\\xe9.jpg" in files
    records = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    matches = {base64.b64decode(r["path_b64"]): r for r in records if r["kind"] == "match"}
    assert set(matches) == {latin1, member}
    assert matches[latin1]["path"] == f"{root}/caf\\xe9.jpg"
    [error] = [r for r in records if r["kind"] == "error"]
    assert base64.b64decode(error["path_b64"]) == broot + b"/not-an-image-\xff.jpg"
    assert error["code"] == "not_an_image"
    assert not any("path_b64" in r for r in records if "\u00e9.txt" in str(r.get("path")))

    csv_report = tmp_path / "report.csv"
    assert scan(home, root, csv_report).returncode == 1
    rows = list(csv.DictReader(io.StringIO(csv_report.read_text(encoding="utf-8"))))
    assert {base64.b64decode(r["path_b64"]) for r in rows if r["kind"] == "match"} == {
        latin1,
        member,
    }

    html_report = tmp_path / "report.html"
    assert scan(home, root, html_report).returncode == 1
    page = html_report.read_text(encoding="utf-8")
    assert f"{root}/caf\\xe9.jpg" in page
    assert base64.b64encode(latin1).decode() in page

    # The journal keeps the exact names: a resume hashes nothing but the error again.
    resumed = scan(home, root, jsonl, "--resume")
    assert resumed.returncode == 1, resumed.stderr
    summary = json.loads(jsonl.read_text(encoding="utf-8").splitlines()[-1])
    assert summary["files_seen"] == 5 and summary["resumed"] == 4
    matched = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert {base64.b64decode(r["path_b64"]) for r in matched if r["kind"] == "match"} == {
        latin1,
        member,
    }
