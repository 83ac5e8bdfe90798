"""``amparo exchange`` over a fake ExchangeService (the service has its own tests): what each
command sends it, what it prints, and its exit codes (0 ok, 1 a fetch failed, 2 bad input)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from amparo.cli import context
from amparo.cli.exchange import parse_interval
from amparo.cli.main import app
from amparo.errors import CredentialsError, ExchangeError, InputError
from amparo.exchanges.model import FetchResult
from exchange_fakes import NOW, FakeAmparo, FakeExchangeService, quarantined_item

Run = Callable[..., Result]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeExchangeService:
    service = FakeExchangeService()
    monkeypatch.setattr(context, "app_factory", lambda s: FakeAmparo(s, service))
    return service


@pytest.fixture
def run(tmp_path: Path, fake: FakeExchangeService) -> Run:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, ["--home", str(tmp_path / "home"), "exchange", *args])

    return invoke


def _flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines


def _add(run: Run, name: str = "mx", *extra: str) -> Result:
    return run("add", name, "--type", "url", "--bank", "shared", *extra)


def test_add_sends_the_collaboration(run: Run, fake: FakeExchangeService) -> None:
    result = _add(
        run,
        "mx",
        "--settings-json",
        '{"url": "https://old.example/x", "page_size": 10}',
        "--setting",
        "url=https://hotline.example/list.csv",
        "--credentials",
        "env:MX_TOKEN",
        "--interval",
        "1h30m",
        "--no-feedback",
        "--paused",
    )
    assert result.exit_code == 0, result.output
    c = fake.collaborations["mx"]
    assert (c.exchange, c.bank, c.credentials) == ("url", "shared", "env:MX_TOKEN")
    assert c.settings == {"url": "https://hotline.example/list.csv", "page_size": 10}
    assert c.interval_seconds == 5400 and not c.feedback and not c.enabled
    assert "amparo exchange fetch mx" in _flat(result.output)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--type", "gopher"], "unknown exchange type 'gopher'"),
        (["--setting", "no-equals"], "is not KEY=VALUE"),
        (["--setting", "=x"], "is not KEY=VALUE"),
        (["--settings-json", "{nope"], "is not JSON"),
        (["--settings-json", "[1]"], "must be a JSON object"),
        (["--interval", "soon"], "is not a duration"),
        (["--interval", "0"], "out of range"),
        (["--credentials", "s3cr3t-token-value"], "is not a reference"),
        (["--credentials", "env:"], "is not a reference"),
    ],
)
def test_add_refuses_bad_input_with_a_hint(run: Run, args: list[str], says: str) -> None:
    base = ["add", "mx", "--type", "url", "--bank", "shared"]
    result = run(*base, *args)
    assert result.exit_code == 2, result.output
    assert says in _flat(result.output)
    assert "hint:" in result.output
    assert "s3cr3t-token-value" not in result.output  # a pasted secret is not echoed


def test_parse_interval() -> None:
    assert parse_interval("3600") == 3600
    assert parse_interval("90s") == 90
    assert parse_interval("15m") == 900
    assert parse_interval("1d") == 86400
    assert parse_interval("1H30M") == 5400
    for bad in ("", "h", "1w", "-5", "1.5", "1h-"):
        with pytest.raises(InputError):
            parse_interval(bad)


def test_list_and_show(run: Run, fake: FakeExchangeService) -> None:
    assert _add(run, "mx", "--credentials", "file:/etc/amparo/mx.json").exit_code == 0
    assert _add(run, "br").exit_code == 0
    fake.statuses["mx"] = {
        "last_fetch_at": NOW,
        "last_attempt_at": NOW,
        "lag_seconds": 125.0,
        "entries_added": 1200,
        "entries_removed": 7,
        "records": 1193,
        "quarantined": 2,
        "pending_opinions": 3,
        "last_error": None,
        "lease_holder": "host:42",
        "next_fetch_at": NOW + timedelta(hours=1),
        "checkpoint": {"cursor": "abc", "fetched_at": NOW.isoformat()},
    }
    fake.quarantine["mx"] = [quarantined_item("mx", 1), quarantined_item("mx", 2, "bad XML")]

    listed = run("list")
    assert listed.exit_code == 0, listed.output
    assert "mx" in listed.output and "br" in listed.output and "1,193" in listed.output
    lines = [json.loads(line) for line in run("list", "--json").output.splitlines()]
    assert [d["name"] for d in lines] == ["br", "mx"]
    assert lines[1]["records"] == 1193 and lines[1]["last_fetch_at"] == NOW.isoformat()

    shown = run("show", "mx")
    assert shown.exit_code == 0, shown.output
    text = _flat(shown.output)
    for expected in (
        "exchange type url",
        "bank shared",
        "lag 2m5s",
        "entries added 1,200",
        "entries removed 7",
        "quarantined 2",
        "pending opinions 3",
        "lease holder host:42",
        "file:/etc/amparo/mx.json",
        "cursor=abc",
        "not a PDQ hash",
        "bad XML",
    ):
        assert expected in text, expected
    data = json.loads(run("show", "mx", "--json").output)
    assert data["credentials"] == "file:/etc/amparo/mx.json"
    assert [q["reason"] for q in data["quarantine"]] == ["not a PDQ hash", "bad XML"]

    missing = run("show", "nope")
    assert missing.exit_code == 2 and "no collaboration 'nope'" in missing.output


def test_fetch_one_and_all(run: Run, fake: FakeExchangeService) -> None:
    _add(run, "mx")
    _add(run, "br")
    _add(run, "off", "--paused")
    fake.results["br"] = FetchResult(collaboration="br", fetched=False)
    result = run("fetch", "mx", "--full")
    assert result.exit_code == 0, result.output
    assert ("fetch", ("mx", True)) in fake.calls
    assert "mx: 3 upserts, 1 deletions (+3 added, -1 removed)" in _flat(result.output)

    result = run("fetch")
    assert result.exit_code == 0, result.output
    fetched = [args[0] for call, args in fake.calls if call == "fetch"]
    assert fetched == ["mx", "br", "mx"]  # every enabled one; the paused one is not
    assert "br: skipped: another process holds the lease" in _flat(result.output)

    as_json = run("fetch", "mx", "--json")
    assert json.loads(as_json.output)["upserts"] == 3


def test_fetch_failures_exit_1_and_the_others_still_run(
    run: Run, fake: FakeExchangeService
) -> None:
    _add(run, "a")
    _add(run, "b")
    _add(run, "c")
    fake.results["a"] = FetchResult(
        collaboration="a", batches=2, error="HTTP 503 after 5 tries [upstream]"
    )
    fake.raises["b"] = CredentialsError("NCMEC refused the credentials", hint="check the file")
    result = run("fetch")
    assert result.exit_code == 1, result.output
    text = _flat(result.output)
    assert "a: fetch failed: HTTP 503 after 5 tries [upstream]" in text
    assert "amparo exchange show a" in text  # the hint
    assert "b: fetch failed: NCMEC refused the credentials" in text and "check the file" in text
    assert "c: 3 upserts" in text
    assert "2 of 3 fetches failed" in text

    fake.raises["c"] = ExchangeError("unreachable")
    one = run("fetch", "c")
    assert one.exit_code == 1 and "unreachable" in one.output
    assert run("fetch", "nope").exit_code == 2  # bad input, not a failed fetch


def test_fetch_follow_fetches_what_is_due_until_interrupted(
    run: Run, fake: FakeExchangeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMPARO_EXCHANGE_POLL_SECONDS", "0.05")
    _add(run, "mx")
    fake.due = ["mx"]
    fake.due_raises = [ExchangeError("database hiccup")]  # printed; the loop goes on
    calls = 0
    original = fake.fetch_due

    def fetch_due(now=None):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 4:
            raise KeyboardInterrupt
        return original(now)

    monkeypatch.setattr(fake, "fetch_due", fetch_due)
    result = run("fetch", "--follow")
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    assert "database hiccup" in text
    assert text.count("mx: 3 upserts") == 3  # the fetch at once, then twice on schedule
    assert ("deliver_opinions", 100) in fake.calls
    assert "stopped" in text


def test_pause_resume_remove(run: Run, fake: FakeExchangeService) -> None:
    _add(run, "mx")
    fake.statuses["mx"] = {"records": 12}
    paused = run("pause", "mx")
    assert paused.exit_code == 0 and not fake.collaborations["mx"].enabled
    assert "amparo exchange resume mx" in _flat(paused.output)
    assert run("resume", "mx").exit_code == 0 and fake.collaborations["mx"].enabled
    kept = run("remove", "mx")
    assert kept.exit_code == 0 and ("remove", ("mx", True)) in fake.calls
    assert "its 12 entries stay in bank shared" in _flat(kept.output)
    _add(run, "mx")
    fake.statuses["mx"] = {"records": 12}
    gone = run("remove", "mx", "--withdraw-entries")
    assert ("remove", ("mx", False)) in fake.calls
    assert "its 12 entries were withdrawn from bank shared" in _flat(gone.output)
    assert run("pause", "mx").exit_code == 2


def test_types_lists_the_registered_exchanges(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from amparo.exchanges import base
    from amparo.exchanges.base import Exchange

    class Dummy(Exchange):
        kind = "dummy"
        description = "A test exchange."
        supports_feedback = True

        def fetch(self, checkpoint):  # type: ignore[no-untyped-def]
            return iter(())

    monkeypatch.setattr(base, "exchange_types", lambda: {"dummy": Dummy})
    result = run("types")
    assert result.exit_code == 0, result.output
    assert "dummy" in result.output and "A test exchange." in result.output
    data = json.loads(run("types", "--json").output)
    assert data == {
        "name": "dummy",
        "description": "A test exchange.",
        "supports_feedback": True,
        "needs_credentials": False,
    }


def test_help_has_examples() -> None:
    runner = CliRunner()
    for command in ("add", "list", "show", "fetch", "pause", "resume", "remove", "types"):
        result = runner.invoke(app, ["exchange", command, "--help"])
        assert result.exit_code == 0, command
        assert "Example" in result.output, command


def test_the_seam_defaults_to_the_real_installation() -> None:
    from amparo.app import Amparo

    assert context.app_factory is Amparo
