"""The CLI's last resort: an unexpected exception is one line and exit 2, never a traceback."""

from __future__ import annotations

import pytest

from amparo.cli import main as cli_main


def test_an_unexpected_error_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli_main, "app", broken)
    monkeypatch.delenv("AMPARO_TRACEBACK", raising=False)
    with pytest.raises(SystemExit) as exited:
        cli_main.main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "unexpected error" in err and "boom" in err and "AMPARO_TRACEBACK" in err
    assert "Traceback" not in err

    monkeypatch.setenv("AMPARO_TRACEBACK", "1")
    with pytest.raises(RuntimeError):
        cli_main.main()
