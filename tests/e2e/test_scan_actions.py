"""Scans run the action rules on matched files, and the rules and webhooks commands work as a
user types them. Synthetic images only; cases and evidence are fakes (other parts)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from amparo import Amparo, BankInfo, load_settings
from amparo.actions import Actioner, Rule
from amparo.cli.main import app
from amparo.events import MatchedContent
from amparo.scan import ScanOptions, scan_paths
from media_support import synthetic_jpeg

KNOWN = synthetic_jpeg(1)
SHA = hashlib.sha256(KNOWN).hexdigest()


@dataclass(frozen=True)
class Preserved:
    id: int


class Fakes:
    """Cases, evidence and reports as the actioner needs them (``amparo.actions.engine``'s
    ``Protocol``s): each call recorded."""

    def __init__(self) -> None:
        self.cases: list[MatchedContent] = []
        self.preserved: list[bytes | Path] = []

    def open_or_extend(
        self, content: MatchedContent, *, evidence_id: int | None, rule: str, actor: str
    ) -> int:
        self.cases.append(content)
        return len(self.cases)

    def preserve(
        self, data: bytes | Path, *, content: MatchedContent, reason: str, actor: str
    ) -> Preserved:
        self.preserved.append(data if isinstance(data, Path) else bytes(data))
        return Preserved(id=len(self.preserved))

    def queue_draft(self, case_id: int, *, rule: str, actor: str) -> int:
        raise AssertionError("no rule here reports")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        amparo.banks.create(BankInfo(name="known"))
        amparo.banks.add_media("known", KNOWN, category="A1")
    return home


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "evidence"
    root.mkdir()
    (root / "k.jpg").write_bytes(KNOWN)
    (root / "u.jpg").write_bytes(synthetic_jpeg(2))
    with zipfile.ZipFile(root / "a.zip", "w") as zf:
        zf.writestr("inside/k2.jpg", KNOWN)
    return root


def test_a_scan_acts_on_each_matched_file_and_member(home: Path, folder: Path) -> None:
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        fakes = Fakes()
        amparo.wire(
            actions=Actioner(
                amparo.settings, amparo.store, evidence=fakes, cases=fakes, reports=fakes
            )
        )
        amparo.actions.add_rule(
            Rule.from_json(
                {"name": "scans", "actions": ["review"], "conditions": {"source_kinds": ["scan"]}}
            ),
            actor="t",
        )
        result = scan_paths(amparo, [folder], ScanOptions(workers=1))
        assert result.matched_files == 2
        sources = sorted((c.source.path, c.source.file_name) for c in fakes.cases)
        assert sources == [
            (str(folder / "a.zip") + "!inside/k2.jpg", "k2.jpg"),
            (str(folder / "k.jpg"), "k.jpg"),
        ]
        assert {c.sha256 for c in fakes.cases} == {SHA}
        assert {c.source.kind for c in fakes.cases} == {"scan"}
        assert len({c.source.scan_id for c in fakes.cases}) == 1
        # The file by its path, the archive member by its bytes.
        assert folder / "k.jpg" in fakes.preserved and KNOWN in fakes.preserved
        assert len(amparo.actions.log()) == 2

        fakes.cases.clear()
        scan_paths(
            amparo, [folder], ScanOptions(workers=1, actions=False, journal=folder.parent / "j")
        )
        assert fakes.cases == []


def cli(home: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(app, ["--home", str(home), *args], env=env)
    return result


def test_rules_commands(home: Path, tmp_path: Path) -> None:
    r = cli(home, "rules", "add", "r1", "--bank", "known", "--max-distance", "20", "--review")
    assert r.exit_code == 0, r.output
    r = cli(home, "rules", "add", "r1", "--review")
    assert r.exit_code == 2 and "already exists" in r.output
    r = cli(home, "rules", "add", "r2", "--webhook", "nowhere")
    assert r.exit_code == 2 and "amparo webhooks add nowhere" in r.output
    r = cli(home, "rules", "add", "r3", "--bank", "known")
    assert r.exit_code == 2 and "no actions" in r.output
    spec = tmp_path / "rule.toml"
    spec.write_text(
        'priority = 5\nactions = [{type = "report"}]\n[conditions]\ncategories = ["A1"]\n'
    )
    assert cli(home, "rules", "add", "from-file", "--file", str(spec)).exit_code == 0
    assert cli(home, "rules", "set", "r1", "--disable", "--source-kind", "scan").exit_code == 0
    shown = json.loads(cli(home, "rules", "show", "r1").stdout)
    assert shown["version"] == 2 and not shown["enabled"]
    assert shown["conditions"] == {"banks": ["known"], "max_distance": 20, "source_kinds": ["scan"]}
    listed = [json.loads(line) for line in cli(home, "rules", "list", "--json").stdout.splitlines()]
    assert [x["name"] for x in listed] == ["from-file", "r1"]
    assert cli(home, "rules", "remove", "r1").exit_code == 0
    history = cli(home, "rules", "history", "r1", "--json").stdout.splitlines()
    assert [json.loads(h).get("deleted", False) for h in history] == [False, False, True]
    assert json.loads(cli(home, "rules", "show", "r1", "--version", "1").stdout)["enabled"]


def test_rules_on_how_a_match_was_found_from_the_command_line(home: Path) -> None:
    r = cli(home, "rules", "add", "odd", "--path", "dihedral", "--path", "variant", "--review")
    assert r.exit_code == 0, r.output
    shown = json.loads(cli(home, "rules", "show", "odd").stdout)
    assert shown["conditions"] == {"paths": ["dihedral", "variant"]}
    assert cli(home, "rules", "set", "odd", "--path", "plain").exit_code == 0
    assert json.loads(cli(home, "rules", "show", "odd").stdout)["conditions"] == {
        "paths": ["plain"]
    }
    r = cli(home, "rules", "add", "bad", "--path", "mirror", "--review")
    assert r.exit_code == 2 and "mirror" in r.output and "dihedral" in r.output
    assert "Traceback" not in r.output


def test_webhooks_commands_and_quarantine_move_from_a_scan(
    home: Path, folder: Path, tmp_path: Path
) -> None:
    # Webhook URLs follow the fetch address policy: internal addresses need the allowlist.
    for internal in ("http://169.254.169.254/latest", "http://127.0.0.1:9/hook", "http://[::1]/"):
        r = cli(home, "webhooks", "add", "platform", internal)
        assert r.exit_code == 2 and "webhook URL refused" in r.output, r.output
        assert "url_allowlist" in r.output
    loopback = {"AMPARO_URL_ALLOWLIST": "127.0.0.1"}
    r = cli(home, "webhooks", "add", "platform", "http://127.0.0.1:9/hook", env=loopback)
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip()
    assert secret.startswith("whsec_")
    assert secret not in cli(home, "webhooks", "list", "--json").stdout
    assert cli(home, "webhooks", "disable", "platform").exit_code == 0
    assert (
        cli(home, "rules", "add", "q", "--quarantine", "move", "--webhook", "platform").exit_code
        == 0
    )

    qdir = tmp_path / "quarantine"
    env = {"AMPARO_QUARANTINE_DIR": str(qdir)}
    r = cli(
        home, "scan", str(folder), "--workers", "1", "--report", str(tmp_path / "r.jsonl"), env=env
    )
    assert r.exit_code == 1, r.output  # matched
    assert not (folder / "k.jpg").exists()  # moved ...
    moved = list(qdir.rglob("*-k.jpg"))
    assert [p.read_bytes() for p in moved] == [KNOWN]  # ... into the quarantine folder
    assert (folder / "a.zip").exists()  # an archive member is never moved
    log = [json.loads(line) for line in cli(home, "rules", "log").stdout.splitlines()]
    assert sorted((x["action"], x["outcome"]) for x in log) == [
        ("quarantine", "done"),
        ("quarantine", "skipped"),
        ("webhook", "done"),
        ("webhook", "done"),
    ]
    events = [
        json.loads(line) for line in cli(home, "webhooks", "outbox", "--json").stdout.splitlines()
    ]
    assert len(events) == 2 and {e["state"] for e in events} == {"pending"}
    assert {e["payload"]["source"]["kind"] for e in events} == {"scan"}
    # The endpoint is disabled: nothing is sent, nothing is lost.
    r = cli(home, "webhooks", "deliver", "--once")
    assert r.exit_code == 0 and r.stdout == ""
    r = cli(home, "webhooks", "test", "platform", env=loopback)
    assert r.exit_code == 2 and "did not accept" in r.output
    # Without the allowlist the test event is refused by policy, before any connection.
    r = cli(home, "webhooks", "test", "platform")
    assert r.exit_code == 2 and "refused by policy" in r.output, r.output
    assert cli(home, "webhooks", "retry", events[0]["event_id"]).exit_code == 0
    r = cli(home, "webhooks", "remove", "platform")
    assert r.exit_code == 0 and "2 undelivered events marked dead" in r.output

    # --no-actions: matches are reported, nothing is done.
    (folder / "k.jpg").write_bytes(KNOWN)
    r = cli(
        home,
        "scan",
        str(folder),
        "--workers",
        "1",
        "--no-actions",
        "-o",
        str(tmp_path / "s.jsonl"),
        env=env,
    )
    assert r.exit_code == 1 and (folder / "k.jpg").exists()
