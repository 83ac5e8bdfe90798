"""``amparo hotline`` as an operator drives it: list, show and the figures over reports made
through the repository; the commands that call other parts (intake, crawl, re-check, notices,
the scheduler) over fakes of those parts; bad input exits 2 with a hint."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hotline_stats_data import ODD_PROVIDER, SHA, populate, stub_notice, stub_report
from typer.testing import CliRunner, Result

from amparo.app import Amparo
from amparo.cli.main import app
from amparo.config import LOCAL_ACTOR, load_settings
from amparo.hotline.intake import Intake
from amparo.hotline.model import Notice, UrlReport
from amparo.hotline.notifying import Notifier
from amparo.hotline.rechecks import Rechecker
from amparo.hotline.runner import HotlineRunner
from amparo.hotline.verify import Verifier

Run = Callable[..., Result]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def ids(home: Path) -> Iterator[dict[str, int]]:
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        yield populate(amparo.hotline.records)


@pytest.fixture
def run(home: Path) -> Run:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, ["--home", str(home), "hotline", *args], env={"COLUMNS": "250"})

    return invoke


def _flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines


def _lines(output: str) -> list[Any]:
    return [json.loads(line) for line in output.splitlines() if line.startswith(("{", "["))]


def test_help_has_examples() -> None:
    runner = CliRunner()
    commands = ("report", "list", "show", "crawl", "recheck", "notify", "run", "stats")
    for command in commands:
        result = runner.invoke(app, ["hotline", command, "--help"])
        assert result.exit_code == 0 and "Example" in result.output, command


def test_list_filters(run: Run, ids: dict[str, int]) -> None:
    result = run("list", "--json")
    assert result.exit_code == 0, result.output
    listed = _lines(result.stdout)
    assert [r["id"] for r in listed] == sorted(ids.values(), reverse=True)  # newest first
    assert all("media" not in key or key == "media_urls" for r in listed for key in r)

    result = run("list", "--status", "open", "--json")
    assert {r["id"] for r in _lines(result.stdout)} == {ids["online"], ids["new"]}
    result = run("list", "--country", "mx", "--json")
    assert {r["id"] for r in _lines(result.stdout)} == {ids["fast"], ids["slow"]}
    result = run("list", "--status", "removed", "--limit", "1", "--json")
    assert [r["id"] for r in _lines(result.stdout)] == [ids["slow"]]

    table = run("list")
    assert table.exit_code == 0, table.output
    assert "b.example/three" in table.stdout and "notified" in table.stdout
    assert "Hoster <B>" in table.stdout  # shown as text, not read as markup


def test_show(run: Run, ids: dict[str, int]) -> None:
    result = run("show", str(ids["fast"]), "--json")
    assert result.exit_code == 0, result.output
    shown = _lines(result.stdout)[0]
    assert shown["status"] == "removed" and shown["attribution"]["country"] == "MX"
    assert shown["items"][0]["sha256"] == SHA and shown["items"][0]["assessment"] == "baseline"
    assert shown["items"][0]["matches"][0]["bank"] == "known"
    assert shown["notices"][0]["recipient"] == "abuse@a.example"
    assert shown["submissions"][0]["channel"] == "web"

    table = run("show", str(ids["online"]))
    assert table.exit_code == 0, table.output
    text = _flat(table.stdout)
    assert ODD_PROVIDER in text and "BR" in text
    assert "failed: connection refused" in text and "abuse@b.example" in text


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["show", "999999"], "no URL report 999999"),
        (["show", "0"], "Invalid value"),
        (["show", "abc"], "Invalid value"),
        (["show", str(2**63)], "Invalid value"),
        (["list", "--status", "gone"], "is not a report status"),
        (["list", "--country", "Mexico"], "is not a country code"),
        (["stats", "--format", "xml"], "is not known"),
        (["report", "https://x.example/", "--language", "fr"], "is not supported"),
    ],
)
def test_bad_input_exits_2_with_a_hint(
    run: Run, ids: dict[str, int], args: list[str], says: str
) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert says in _flat(result.output)
    assert "hint:" in result.output or "for help" in result.output


def test_stats_in_every_format(run: Run, ids: dict[str, int]) -> None:
    result = run("stats", "--format", "json")
    assert result.exit_code == 0, result.output
    figures = _lines(result.stdout)[0]
    overall = figures["overall"]
    assert (overall["reports"], overall["open_urls"], overall["notices_sent"]) == (4, 2, 5)
    assert overall["removed"] == 2 and overall["reappearances"] == 1
    assert overall["removal_hours"] == {"p50": 2.0, "p90": 50.0, "p99": 50.0}
    assert overall["removed_within"]["1d"] == pytest.approx(1 / 3)
    assert overall["removed_within"]["3d"] == pytest.approx(2 / 3)
    assert [g["name"] for g in figures["by_country"]] == ["MX", "BR", "unknown"]

    result = run("stats", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["scope"] == "overall" and rows[0]["reports"] == "4"
    provider = next(r for r in rows if r["scope"] == "provider" and r["name"] == "Hoster A")
    assert provider["removal_hours_p50"] == "2.00" and provider["removed_within_7d"] == "1.0000"

    table = run("stats")
    assert table.exit_code == 0, table.output
    assert "per provider" in table.stdout and "Hoster A" in table.stdout


def test_actions_call_the_parts(
    run: Run, ids: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, Any]] = []

    def report(self: Intake, url: str, **kw: Any) -> tuple[UrlReport, bool]:
        calls.append(("report", (url, kw)))
        return replace(stub_report(41, "new"), url=url), False

    def crawl(self: Verifier, report_id: int, *, actor: str) -> UrlReport:
        calls.append(("crawl", (report_id, actor)))
        return stub_report(report_id, "confirmed")

    def recheck(self: Rechecker, report_id: int, *, actor: str) -> UrlReport:
        calls.append(("recheck", (report_id, actor)))
        return stub_report(report_id, "removed")

    def notify(self: Notifier, report_id: int, *, actor: str, force: bool = False) -> list[Notice]:
        calls.append(("notify", (report_id, actor, force)))
        return [stub_notice(report_id, 9)]

    monkeypatch.setattr(Intake, "report", report)
    monkeypatch.setattr(Verifier, "crawl", crawl)
    monkeypatch.setattr(Rechecker, "recheck", recheck)
    monkeypatch.setattr(Notifier, "notify", notify)

    result = run("report", "https://x.example/p", "--language", "es-MX", "--comment", "seen")
    assert result.exit_code == 0, result.output
    assert _lines(result.stdout)[0] == {
        "id": 41,
        "joined": False,
        "status": "new",
        "url": "https://x.example/p",
    }
    assert calls[-1] == (
        "report",
        (
            "https://x.example/p",
            {"channel": "cli", "actor": LOCAL_ACTOR, "language": "es", "comment": "seen"},
        ),
    )
    assert run("crawl", "5").exit_code == 0
    assert calls[-1] == ("crawl", (5, LOCAL_ACTOR))
    result = run("recheck", "6")
    assert result.exit_code == 0 and _lines(result.stdout)[0]["status"] == "removed"
    result = run("notify", "7", "--force")
    assert result.exit_code == 0, result.output
    assert calls[-1] == ("notify", (7, LOCAL_ACTOR, True))
    assert "notice by email to abuse@x.example: sent" in result.output


def test_errors_of_the_parts_exit_2(
    run: Run, ids: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from amparo.errors import NotFoundError

    def crawl(self: Verifier, report_id: int, *, actor: str) -> UrlReport:
        raise NotFoundError(f"no URL report {report_id}", hint="list them")

    monkeypatch.setattr(Verifier, "crawl", crawl)
    result = run("crawl", "12345")
    assert result.exit_code == 2 and "no URL report 12345" in result.output
    assert "hint:" in result.output


class _Pass:
    def __init__(self, n: int) -> None:
        self.crawled = n
        self.notified = 0


def test_run_once_and_follow(
    run: Run, home: Path, ids: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[int] = []

    def run_once(self: HotlineRunner) -> object:
        passes.append(1)
        if len(passes) >= 3:
            raise KeyboardInterrupt  # what Ctrl-C does to --follow
        return _Pass(len(passes))

    monkeypatch.setattr(HotlineRunner, "run_once", run_once)
    result = run("run")
    assert result.exit_code == 0, result.output
    assert _lines(result.stdout) == [{"crawled": 1, "notified": 0}]

    passes.clear()
    result = CliRunner().invoke(
        app,
        ["--home", str(home), "hotline", "run", "--follow"],
        env={"AMPARO_HOTLINE_POLL_SECONDS": "0.05"},
    )
    assert len(passes) == 3
    assert "stopped" in result.output and result.exit_code == 0, result.output
