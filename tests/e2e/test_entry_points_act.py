"""Issue #13 point 2: every entry point that finds a match runs the action rules the same
way. One rule (open a review case), one bank holding a benign photo by PDQ, MD5 and SHA-256;
the photo is then checked through each entry point in turn, and each check shows up in the
actions-taken log with its source. A bare PDQ lookup names no content and runs no rule."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from test_api_support import QUIET, make_keys
from typer.testing import CliRunner

from amparo.actions import Rule
from amparo.api import create_app
from amparo.app import Amparo
from amparo.banks.model import BankInfo, EntryRecord
from amparo.cli.main import app as cli
from amparo.config import Settings, load_settings

pytestmark = QUIET
World = tuple[TestClient, dict[str, dict[str, str]], Amparo]


def _photo() -> bytes:
    rng = np.random.default_rng(13)
    y, x = np.mgrid[0:360, 0:480].astype(np.float32)
    channels = [127 + 120 * np.sin(x / rng.uniform(20, 90)) * np.cos(y / 40) for _ in range(3)]
    out = io.BytesIO()
    Image.fromarray(np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)).save(
        out, format="JPEG", quality=92
    )
    return out.getvalue()


PHOTO = _photo()
SHA = hashlib.sha256(PHOTO).hexdigest()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings: Settings = load_settings(env={}, overrides={"home": tmp_path / "home"})
    keys = make_keys(settings)
    with TestClient(create_app(settings)) as tc:
        amparo: Amparo = tc.app.state.service.amparo
        amparo.banks.create(BankInfo(name="known"))
        amparo.banks.add_media("known", PHOTO, category="A1")
        amparo.banks.add_entries("known", [EntryRecord("sha256", SHA, category="A1")])
        amparo.actions.add_rule(
            Rule.from_json({"name": "review-all", "actions": [{"type": "review"}]}), actor="t"
        )
        yield tc, {k: {"Authorization": f"Bearer {v}"} for k, v in keys.items()}, amparo


def _acted(amparo: Amparo) -> int:
    return len(amparo.actions.log(sha256=SHA, limit=1000))


def test_each_entry_point_runs_the_rules(world: World) -> None:
    tc, keys, amparo = world
    matcher = keys["matcher"]
    calls = {
        "/v1/match": lambda: tc.post(
            "/v1/match", files={"file": ("a.jpg", PHOTO)}, headers=matcher
        ),
        "/v1/match/signals": lambda: tc.post(
            "/v1/match/signals",
            json={"signals": [{"signal_type": "sha256", "signal": SHA}]},
            headers=matcher,
        ),
        "/v1/lookup": lambda: tc.get(
            "/v1/lookup", params={"signal_type": "sha256", "signal": SHA}, headers=matcher
        ),
        "/m/raw_lookup": lambda: tc.get(
            "/m/raw_lookup", params={"signal_type": "sha256", "signal": SHA}, headers=matcher
        ),
        "/m/lookup (signal)": lambda: tc.get(
            "/m/lookup", params={"signal_type": "sha256", "signal": SHA}, headers=matcher
        ),
        "/m/lookup (upload)": lambda: tc.post(
            "/m/lookup", files={"photo": ("a.jpg", PHOTO)}, headers=matcher
        ),
    }
    for name, call in calls.items():
        before = _acted(amparo)
        response = call()
        assert response.status_code == 200, (name, response.text)
        assert _acted(amparo) == before + 1, f"{name} ran no rule"
    # All of them are one piece of content: one case, extended by each find.
    assert len(amparo.cases.queue("waiting", limit=100)) == 1
    # And each counts once in the match volume, though some look it up twice or by several
    # signals (an upload to /m/lookup: every signal, then the rules' check of the media).
    amparo.flush_counts()
    counted = [(b, s, n) for _, b, s, n in amparo.tally.repository.since(date(2000, 1, 1))]
    assert counted == [("known", "api", len(calls))]
    # A bare PDQ hash names no content: answered, but no rule runs.
    pdq = amparo.checks.hash_bytes(PHOTO).pdq
    before = _acted(amparo)
    r = tc.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": pdq}, headers=matcher)
    assert r.status_code == 200 and r.json()["matches"]
    assert _acted(amparo) == before


def test_the_cli_runs_the_rules_unless_told_not_to(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        amparo.banks.create(BankInfo(name="known"))
        amparo.banks.add_entries("known", [EntryRecord("sha256", SHA, category="A1")])
        amparo.actions.add_rule(
            Rule.from_json({"name": "review-all", "actions": [{"type": "review"}]}), actor="t"
        )
    runner = CliRunner()
    quiet = runner.invoke(
        cli, ["--home", str(home), "match", "--type", "sha256", "--no-actions", SHA]
    )
    assert quiet.exit_code == 1, quiet.output  # matched
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        assert _acted(amparo) == 0
    acted = runner.invoke(cli, ["--home", str(home), "match", "--type", "sha256", SHA])
    assert acted.exit_code == 1, acted.output
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        records = amparo.actions.log(sha256=SHA)
        assert len(records) == 1 and records[0].source["kind"] == "cli"
