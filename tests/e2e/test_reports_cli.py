"""``amparo reports`` commands that need no reviewed case: help, listing, clear errors."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from amparo.cli.main import app


def test_help_lists_every_command_with_an_example() -> None:
    runner = CliRunner()
    for group, commands in (
        ("reports", ("list", "build", "show", "submit", "retract", "package", "standin")),
        ("audit", ("verify", "export", "checkpoint", "public-key", "list")),
    ):
        for command in commands:
            result = runner.invoke(app, [group, command, "--help"])
            assert result.exit_code == 0 and "Example" in result.output, (group, command)


def test_listing_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path / "home")]
    result = runner.invoke(app, [*home, "reports", "list", "--json"])
    assert result.exit_code == 0 and result.stdout == ""
    missing = runner.invoke(app, [*home, "reports", "show", "42"])
    assert missing.exit_code == 2 and "no report 42" in missing.stderr
    both = runner.invoke(app, [*home, "reports", "build"])
    assert both.exit_code == 2 and "draft id or --case" in both.stderr
    typo = runner.invoke(app, [*home, "reports", "list", "--status", "sent"])
    assert typo.exit_code == 2 and "unknown report status 'sent'" in typo.stderr
    huge = runner.invoke(app, [*home, "reports", "show", str(2**70)])
    assert huge.exit_code == 2 and "Traceback" not in huge.output
