"""`make demo` runs the whole job: every modified copy matches its original, nothing else does."""

from __future__ import annotations

from pathlib import Path

from amparo.demo import KNOWN, build, main
from amparo.scan import ScanOptions, scan_paths


def test_demo_finds_every_copy_and_nothing_else(tmp_path: Path) -> None:
    amparo, scan_dir = build(tmp_path / "demo")
    try:
        result = scan_paths(amparo, [scan_dir], ScanOptions(workers=1))
    finally:
        amparo.close()
    matched = {}
    for match in result.matches:
        matched[Path(match.path.split("!")[-1]).name] = match
    copies = {p.name for p in scan_dir.iterdir() if p.name.split("-")[0] in KNOWN}
    assert set(matched) == copies | {"camera-copy.jpg"}
    for name, match in matched.items():
        assert name.startswith(str(match.match["source_id"]).split("_")[0])
    assert result.exit_code == 1


def test_demo_main_prints_a_report(tmp_path: Path, capsys) -> None:
    assert main(["--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "Matches" in out and "No match" in out
    assert "wait for human" in out and "all covered by" in out and "verified intact" not in out
    assert (tmp_path / "out" / "report.html").is_file()
