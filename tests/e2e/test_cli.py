"""The CLI as a user drives it: bank management, import/export, match, hash, errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data
from typer.testing import CliRunner

from amparo.cli.main import app

MD5 = "0cc175b9c0f1b6a831c399e269772661"
PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


@pytest.fixture
def run(tmp_path: Path):
    runner = CliRunner()
    home = tmp_path / "home"

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, ["--home", str(home), *args], input=input)

    return invoke


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_version_and_help() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).output.startswith("amparo ")
    commands = [["hash"], ["match"], ["scan"], ["serve"], ["bank"], ["keys"], ["index"]]
    commands += [["bank", c] for c in ("create", "list", "show", "import", "export", "add")]
    commands += [["bank", c] for c in ("remove", "enable", "disable", "set", "delete")]
    commands += [["keys", c] for c in ("create", "list", "revoke")]
    commands += [["index", c] for c in ("status", "verify", "compact", "rebuild")]
    for command in commands:
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, command
        assert "Example" in result.output, command


def test_bank_import_match_export_roundtrip(run, tmp_path: Path) -> None:
    assert run("bank", "create", "known", "--source", "test list").exit_code == 0
    listing = tmp_path / "list.csv"
    listing.write_text(f"signal_type,signal,category\nmd5,{MD5},c1\npdq,{PDQ},c2\nmd5,nothex,c3\n")
    result = run("bank", "import", "known", str(listing))
    assert result.exit_code == 1, result.output  # imported, but a line was skipped
    assert "list.csv:4:" in result.output  # the bad line, by number
    summary = " ".join(result.output.split())  # rich wraps long lines
    assert "added 2" in summary and "1 bad entries skipped" in summary
    result = run("match", MD5)
    assert result.exit_code == 1
    assert _lines(result.output)[0]["category"] == "c1"
    result = run("match", "--type", "pdq", "-", input=PDQ + "\n" + "0" * 64 + "\n")
    assert result.exit_code == 1 and len(_lines(result.output)) == 1
    assert run("match", "d41d8cd98f00b204e9800998ecf8427e").exit_code == 0
    out = tmp_path / "out.csv"
    assert run("bank", "export", "known", str(out), "--format", "csv").exit_code == 0
    assert MD5 in out.read_text() and PDQ in out.read_text()
    shown = _lines(run("bank", "show", "known").output)[0]
    assert shown["entries"] == 2 and shown["source"] == "test list"


def test_strict_import_changes_nothing(run, tmp_path: Path) -> None:
    run("bank", "create", "known")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{MD5}\nnot-a-hash\n")
    result = run("bank", "import", "known", str(listing), "--strict")
    assert result.exit_code == 2
    assert "line 2" in result.output
    assert _lines(run("bank", "show", "known").output)[0]["entries"] == 0


def test_import_exit_codes_say_what_was_imported(tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, ["--home", str(tmp_path / "home"), *args])
        result.text = " ".join(result.output.split())  # rich wraps long lines
        return result

    run("bank", "create", "known")
    good = tmp_path / "good.txt"
    good.write_text(f"{MD5}\n")
    result = run("bank", "import", "known", str(good))
    assert result.exit_code == 0, result.output
    assert "added 1" in result.text
    # Every line rejected: nothing valid read, exit 2, and the bank is left as it was
    # (even with --replace, which would otherwise have emptied it).
    bad = tmp_path / "bad.txt"
    bad.write_text("not-a-hash\nalso bad\n")
    for extra in ((), ("--replace",)):
        result = run("bank", "import", "known", str(bad), *extra)
        assert result.exit_code == 2, result.output
        assert "no valid entry" in result.text and "2 entries were rejected" in result.text
        assert "Traceback" not in result.text
        assert _lines(run("bank", "show", "known").output)[0]["entries"] == 1
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = run("bank", "import", "known", str(empty), "--replace")
    assert result.exit_code == 2 and "no entry in the list" in result.text
    assert _lines(run("bank", "show", "known").output)[0]["entries"] == 1
    # Some lines skipped: the good ones are imported, exit 1, the summary counts both.
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(f"signal_type,signal\npdq,{PDQ}\nmd5,nothex\n")
    result = run("bank", "import", "known", str(mixed))
    assert result.exit_code == 1, result.output
    assert "added 1" in result.text and "1 bad entries skipped (first at 3:" in result.text
    assert _lines(run("bank", "show", "known").output)[0]["entries"] == 2
    assert "Exit status" in run("bank", "import", "--help").text


def test_add_remove_enable_disable(run, tmp_path: Path) -> None:
    run("bank", "create", "b")
    photo = tmp_path / "photo.jpg"
    Image.fromarray(data.coffee()).save(photo, quality=90)
    assert run("bank", "add", "b", str(photo), f"md5:{MD5}").exit_code == 0
    assert run("match", MD5).exit_code == 1
    assert run("bank", "disable", "b", f"md5:{MD5}").exit_code == 0
    assert run("match", MD5).exit_code == 0
    assert run("bank", "enable", "b", f"md5:{MD5}").exit_code == 0
    assert run("bank", "disable", "b").exit_code == 0
    assert run("match", MD5).exit_code == 0
    assert run("bank", "enable", "b").exit_code == 0
    assert run("bank", "remove", "b", f"md5:{MD5}").exit_code == 0
    assert run("match", MD5).exit_code == 0
    hashed = _lines(run("hash", str(photo)).output)[0]
    result = run("match", "--type", "pdq", hashed["pdq"])
    assert result.exit_code == 1


def test_bank_add_prints_what_was_added(run, tmp_path: Path) -> None:
    """Issue 12 (point 15): a video printed "pdq": null while its vPDQ was added, and a flat
    photo printed a PDQ that was not added."""
    av = pytest.importorskip("av")
    run("bank", "create", "b")
    flat = tmp_path / "flat.png"
    Image.new("RGB", (256, 256), (200, 200, 200)).save(flat)
    result = run("bank", "add", "b", str(flat))
    assert result.exit_code == 0, result.output
    [row] = _lines(result.output)
    assert set(row["added"]) == {"md5"} and "pdq" not in row
    assert "pdq_min_quality" in row["not_added"]["pdq"]

    clip = tmp_path / "clip.mp4"
    photo = data.astronaut()
    with av.open(str(clip), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(20):
            window = Image.fromarray(photo[100:356, i * 4 : i * 4 + 256]).resize((160, 120))
            frame = av.VideoFrame.from_ndarray(np.asarray(window), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    result = run("bank", "add", "b", str(clip))
    assert result.exit_code == 0, result.output
    [row] = _lines(result.output)
    assert row["media_type"] == "video" and "not_added" not in row
    assert set(row["added"]) == {"vpdq", "md5", "sha256"}
    assert row["added"]["vpdq"]["frames"] == 20 and row["added"]["vpdq"]["sample_fps"] == 10.0


def test_errors_are_one_line_with_a_hint(run, tmp_path: Path) -> None:
    for args in (
        ("bank", "show", "missing"),
        ("match", "xyz"),
        ("bank", "import", "missing", str(tmp_path / "nope.csv")),
        ("bank", "create", "bad name"),
        ("match", "--type", "pdq", "zz"),
    ):
        result = run(*args)
        assert result.exit_code == 2, args
        assert "Traceback" not in result.output
        assert "error:" in result.output, args


def test_binary_hash_list_is_a_clear_error(run, tmp_path: Path) -> None:
    run("bank", "create", "b")
    blob = tmp_path / "list.txt"
    blob.write_bytes(bytes(range(128, 256)) * 10)
    result = run("bank", "import", "b", str(blob))
    assert result.exit_code == 2
    assert "not UTF-8 text" in result.output and "Traceback" not in result.output


def test_hash_reports_unreadable_and_corrupt_files(run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is text")
    result = run("hash", str(bad), str(tmp_path / "missing.jpg"))
    assert result.exit_code == 2
    rows = _lines(result.output)
    assert rows[0]["pdq"] is None and rows[0]["md5"] and "error" in rows[0]
    assert "error" in rows[1]


def test_real_process_entry_point(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "amparo.cli.main",
            "--home",
            str(tmp_path),
            "bank",
            "list",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    img = io.BytesIO()
    Image.fromarray(data.rocket()).save(img, "PNG")
    path = tmp_path / "r.png"
    path.write_bytes(img.getvalue())
    proc = subprocess.run(
        [sys.executable, "-m", "amparo.cli.main", "hash", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)["media_type"] == "png"


@pytest.mark.parametrize("fmt", ["csv", "vics", "te"])
def test_import_from_stdin_reads_the_list_past_its_sniffed_head(run, fmt: str) -> None:
    """A list piped in is read as it is imported (not held whole): its first 64 KiB, read to
    tell the format, are given back before the rest; a line cut by that boundary is whole."""
    import random

    from amparo.banks.formats import write_entries
    from amparo.banks.model import EntryRecord

    rng = random.Random(7)
    records = [EntryRecord("md5", f"{rng.getrandbits(128):032x}") for _ in range(4000)]
    buffer = io.StringIO()
    write_entries(buffer, fmt, records)
    assert len(buffer.getvalue()) > 2 * 65536
    assert run("bank", "create", "known").exit_code == 0
    result = run("bank", "import", "known", "-", "--strict", input=buffer.getvalue())
    assert result.exit_code == 0, result.output
    assert _lines(run("bank", "show", "known").output)[0]["entries"] == 4000
    result = run("match", records[-1].signal)
    assert result.exit_code == 1


def test_import_from_stdin_that_is_not_utf8_is_a_clear_error(run) -> None:
    assert run("bank", "create", "known").exit_code == 0
    result = run("bank", "import", "known", "-", input=f"md5,{MD5}\n".encode() + b"\xff\xfe\n")
    assert result.exit_code == 2, result.output
    assert "not UTF-8" in result.output
    assert _lines(run("bank", "show", "known").output)[0]["entries"] == 0
