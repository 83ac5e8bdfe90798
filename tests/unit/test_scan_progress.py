"""The scan's progress display, driven with made-up progress: what a terminal shows (files/s,
bytes/s in human units, matches, errors, workers alive, an ETA once the roots are counted),
the plain line a log gets instead, and a count that fails leaving the bar without an ETA.

No timing is asserted: every rate comes from the fake ``elapsed_s`` given."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

import amparo.cli.scan as cli_scan
from amparo.cli.scan import _ProgressDisplay
from amparo.scan import ScanProgress


def progress(files: int, seconds: float, **more: int) -> ScanProgress:
    return ScanProgress(
        files_done=files,
        items_done=more.get("items", files),
        matches=more.get("matches", 0),
        errors=more.get("errors", 0),
        elapsed_s=seconds,
        current="x",
        bytes_done=more.get("bytes", 0),
        workers=more.get("workers", 0),
    )


def folder_of(tmp_path: Path, n: int) -> Path:
    root = tmp_path / "media"
    (root / "sub").mkdir(parents=True)
    for i in range(n):
        (root / ("sub" if i % 2 else ".") / f"f{i}.bin").write_bytes(b"x")
    return root


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=200, color_system=None), out


def test_terminal_bar_shows_rates_in_human_units_workers_and_an_eta(tmp_path: Path) -> None:
    root = folder_of(tmp_path, 10)
    console, out = terminal()
    with _ProgressDisplay([str(root)], console=console) as display:
        assert display.counter is not None
        display.counter.join()
        assert display.total == 10
        display.update(progress(4, 2.0, bytes=3_000_000, matches=1, errors=2, workers=6))
        assert display.progress is not None
        display.progress.refresh()
        shown = out.getvalue()
    assert "4/10" in shown
    assert "2 files/s" in shown
    assert "1.5 MB/s" in shown  # 3,000,000 bytes in 2 s, decimal units
    assert "1 matches" in shown
    assert "2 errors" in shown
    assert "6 workers" in shown
    assert "ETA 0:00:03" in shown  # 6 files left at 2 files/s


def test_no_eta_before_the_count_or_past_it() -> None:
    assert cli_scan._eta(None, 5, 1.0) == "-:--:--"
    assert cli_scan._eta(10, 11, 1.0) == "-:--:--"  # more done than counted: files appeared
    assert cli_scan._eta(10, 0, 0.0) == "-:--:--"
    assert cli_scan._eta(7_300, 100, 2.0) == "1:00:00"


def test_buckets_and_folders_are_counted_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = folder_of(tmp_path, 3)
    seen: list[list[str]] = []

    def count_objects(urls: list[str], _options: object) -> int:
        seen.append(list(urls))
        return 40

    monkeypatch.setattr(cli_scan, "count_objects", count_objects)
    display = _ProgressDisplay([str(root), "s3://bucket/a", "s3://other"])
    assert display.count_total() == 43
    assert seen == [["s3://bucket/a", "s3://other"]]  # only the buckets go to S3


def test_a_bucket_count_that_fails_leaves_the_bar_without_a_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(_urls: object, _options: object) -> int:
        raise ConnectionError("endpoint unreachable")

    monkeypatch.setattr(cli_scan, "count_objects", unreachable)
    console, out = terminal()
    roots = [str(folder_of(tmp_path, 2)), "s3://bucket"]
    with _ProgressDisplay(roots, console=console) as display:
        assert display.counter is not None
        display.counter.join()
        assert display.total is None
        display.update(progress(1, 1.0, workers=2))
        assert display.progress is not None
        display.progress.refresh()
    assert "ETA -:--:--" in out.getvalue()


def test_a_log_gets_a_plain_line_with_bytes_and_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    stream = io.StringIO()
    display = _ProgressDisplay(["."], stream, console=console)
    display.last_line -= cli_scan.PLAIN_PROGRESS_EVERY_S  # a line is due
    with display:
        assert display.progress is None
        display.update(progress(2_000, 4.0, items=2_500, bytes=8_000_000, workers=32))
        display.update(progress(2_001, 4.0))  # not due yet: no second line
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert "2,000 files (2,500 with archive members)" in line
    assert "500 files/s" in line
    assert "2.0 MB/s" in line
    assert "32 workers" in line
