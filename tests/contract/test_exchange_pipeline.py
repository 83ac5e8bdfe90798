"""Issue #14, the whole pipeline with a real exchange type: ExchangeService -> runner ->
StopNCII exchange -> a loopback fake of StopNCII's API, and back. A hash StopNCII lists is
fetched into the bank, matched, a reviewer's false positive goes back as SubmitFeedback, and
a withdrawal (``hashStatus`` Withdrawn: what HMA never applies) removes the entry. SQLite;
benign synthetic media only."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amparo.actions import Rule
from amparo.app import Amparo
from amparo.config import Settings
from amparo.events import Source
from amparo.exchanges.model import Collaboration
from fakes.stopncii import FEEDBACK_KEY, FETCH_KEY, SUBSCRIPTION_KEY, FakeStopNCII


def _photo() -> bytes:
    rng = np.random.default_rng(21)
    y, x = np.mgrid[0:300, 0:400].astype(np.float32)
    channels = [127 + 120 * np.sin(x / rng.uniform(15, 80)) * np.cos(y / 30) for _ in range(3)]
    out = io.BytesIO()
    Image.fromarray(np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)).save(
        out, format="PNG"
    )
    return out.getvalue()


@pytest.fixture
def core(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Amparo]:
    settings = replace(sqlite_settings, url_allowlist="127.0.0.1", exchange_backoff_seconds=0.0)
    monkeypatch.setenv(
        "AMPARO_SECRET_NCII",
        json.dumps(
            {
                "subscription_key": SUBSCRIPTION_KEY,
                "fetch_function_key": FETCH_KEY,
                "feedback_function_key": FEEDBACK_KEY,
            }
        ),
    )
    with Amparo(settings) as amparo:
        amparo.actions.add_rule(
            Rule.from_json({"name": "review-all", "actions": [{"type": "review"}]}), actor="t"
        )
        yield amparo


def test_fetch_match_feedback_and_withdrawal(core: Amparo, tmp_path: Path) -> None:
    photo = _photo()
    hashes = core.checks.hash_bytes(photo)
    assert hashes.pdq is not None
    other = f"{int(hashes.pdq, 16) ^ ((1 << 256) - 1):064x}"  # 256 bits away: unrelated
    now = int(time.time())
    with FakeStopNCII() as fake:
        fake.put(hashes.pdq, now - 100)
        fake.put(other, now - 90)
        core.exchanges.add(
            Collaboration(
                name="ncii",
                exchange="stopncii",
                bank="ncii",
                settings={"base_url": fake.url, "page_size": 3},
                credentials="env:AMPARO_SECRET_NCII",
            ),
            actor="curator",
        )
        first = core.exchanges.fetch("ncii")
        assert first.error is None and first.added == 2
        assert core.banks.get("ncii").entry_count == 2

        # A match, a case, a reviewer's false positive: the opinion goes back to StopNCII.
        check = core.checks.check_media(
            hashes, source=Source(kind="api", upload_id="u1"), actor="platform"
        )
        assert check.matches and check.actions
        item = core.cases.queue()[0].items[0]
        core.cases.decide(item.id, "false_positive", reviewer="rita")
        assert core.exchanges.status("ncii").pending_opinions == 1
        assert core.exchanges.deliver_opinions() == 1
        posts = [r for r in fake.requests if r.path.endswith("/SubmitFeedback")]
        assert [p.body["hashFeedbacks"][0]["feedbackValue"] for p in posts] == ["NotBlocked"]
        assert posts[0].body["hashFeedbacks"][0]["hashValue"] == hashes.pdq
        assert core.exchanges.status("ncii").pending_opinions == 0

        # StopNCII withdraws the other hash: the entry goes (soft), matching stops.
        fake.put(other, now - 10, status="Withdrawn")
        second = core.exchanges.fetch("ncii")
        assert second.error is None and second.removed == 1
        assert core.banks.get("ncii").entry_count == 1
        assert core.checks.match_signals([("pdq", other)])[0] == []
        status = core.exchanges.status("ncii")
        assert status.entries_added == 2 and status.entries_removed == 1
        assert status.last_error is None and status.quarantined == 0
