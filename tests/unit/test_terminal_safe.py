"""No control character of a scanned file's name reaches the terminal: a name holding
ESC sequences (an OSC that retitles the terminal, a CSI that recolours it) is printed with
them shown as ``\\xNN`` by ``amparo scan``'s summary and by error lines."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from amparo import Amparo, BankInfo, load_settings
from amparo.cli.context import fail
from amparo.cli.main import app
from amparo.cli.terminal import terminal_safe

HOSTILE = "x\x1b]0;OWNED\x07\x1b[31mred.jpg"


def test_control_characters_are_shown_as_hex_and_unicode_kept() -> None:
    assert terminal_safe(HOSTILE) == "x\\x1b]0;OWNED\\x07\\x1b[31mred.jpg"
    assert terminal_safe("a\u009bb\x7fc\nd\te") == "a\\x9bb\\x7fc\\x0ad\\x09e"
    assert terminal_safe("line\n\tnext", keep_lines=True) == "line\n\tnext"
    assert terminal_safe("Fotos/ñandú 日本.jpg") == "Fotos/ñandú 日本.jpg"
    assert terminal_safe("bad\udcff.jpg") == "bad\\xff.jpg"  # a name that is not UTF-8


def test_scan_summary_prints_a_hostile_name_without_its_escapes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        amparo.banks.create(BankInfo(name="known"))
        out = io.BytesIO()
        Image.new("RGB", (64, 64), (200, 10, 10)).save(out, "JPEG")
        amparo.banks.add_media("known", out.getvalue(), category="test")
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / HOSTILE).write_bytes(b"\xff\xd8\xff\xe0broken jpeg")
    result = CliRunner().invoke(
        app, ["--home", str(home), "scan", "--workers", "1", "--no-actions", str(evidence)]
    )
    assert result.exit_code == 2, result.output
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "x\\x1b]0;OWNED\\x07\\x1b[31mred.jpg" in result.stderr  # named, visibly


def test_error_lines_show_a_hostile_path_without_its_escapes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fail(f"cannot read {HOSTILE}", hint="check\nthe file")
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert "x\\x1b]0;OWNED" in err and "check\nthe file" in err  # its own lines kept
