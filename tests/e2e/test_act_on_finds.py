"""The whole path from a find to a report, with every part real (no fakes): a platform's
upload matches a bank, a rule preserves it (encrypted) and opens a case, a reviewer reveals
and confirms it, the queued report is built and submitted to the stand-in CyberTipline with
the preserved file, a package is exported, and the audit chain verifies throughout."""

from __future__ import annotations

import hashlib
import io
import json
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from test_api_support import QUIET, make_keys

from amparo.api import create_app
from amparo.app import Amparo
from amparo.banks.model import BankInfo
from amparo.config import Settings
from amparo.errors import AmparoError
from amparo.events import MatchedContent, Source
from amparo.matching import Match
from amparo.reports.standin import StandIn, running

pytestmark = QUIET
World = tuple[TestClient, dict[str, Any], StandIn]


def _photo(seed: int) -> bytes:
    """A benign synthetic photo: smooth colour gradients plus a few shapes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    channels = [
        127
        + 120
        * np.sin(x / rng.uniform(20, 90) + rng.uniform(0, 6))
        * np.cos(y / rng.uniform(20, 90) + rng.uniform(0, 6))
        for _ in range(3)
    ]
    pixels = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=92)
    return out.getvalue()


@pytest.fixture
def world(sqlite_settings: Settings) -> Iterator[World]:
    standin = StandIn()
    with running(standin) as url:
        settings = replace(
            sqlite_settings,
            reporter_org_name="Example Platform",
            reporter_email="safety@example.org",
            cybertip_url=url,
        )
        keys = make_keys(settings)
        with TestClient(create_app(settings)) as tc:
            yield tc, {k: {"Authorization": f"Bearer {v}"} for k, v in keys.items()}, standin


def test_a_find_becomes_a_reviewed_report(world: World) -> None:
    tc, keys, standin = world
    amparo: Amparo = tc.app.state.service.amparo
    known, other = _photo(1), _photo(2)
    amparo.banks.create(BankInfo(name="known"))
    amparo.banks.add_media("known", known, category="A1")

    rule = {
        "name": "review-and-report",
        "conditions": {"banks": ["known"], "max_distance": 31},
        "actions": [{"type": "review"}, {"type": "report"}],
    }
    assert tc.post("/v1/rules", json=rule, headers=keys["curator"]).status_code == 201

    # Content that matches nothing is neither acted on nor kept.
    miss = tc.post(
        "/v1/match", files={"file": ("other.jpg", other)}, params={"account_id": "acct-9"},
        headers=keys["matcher"],
    )  # fmt: skip
    assert miss.status_code == 200 and miss.json()["matches"] == []
    assert amparo.evidence.list() == []

    hit = tc.post(
        "/v1/match", files={"file": ("holiday.jpg", known)},
        params={"account_id": "acct-9", "upload_id": "up-1"}, headers=keys["matcher"],
    )  # fmt: skip
    assert hit.status_code == 200, hit.text
    body = hit.json()
    assert {(m["bank"], m["signal_type"]) for m in body["matches"]} >= {("known", "pdq")}
    outcomes = {a["action"]: a["outcome"] for a in body["actions"]}
    assert outcomes == {"review": "done", "report": "done"}, body["actions"]

    # The case holds the upload, preserved encrypted; the reviewer sees it in the queue.
    queue = tc.get("/v1/cases", headers=keys["reviewer"]).json()
    assert len(queue) == 1
    case = tc.get(f"/v1/cases/{queue[0]['id']}", headers=keys["reviewer"]).json()
    (item,) = case["items"]
    assert item["sha256"] == hashlib.sha256(known).hexdigest()
    assert item["evidence_id"] is not None
    assert amparo.evidence.read(item["evidence_id"], actor="test") == known

    # Reveal (as the web UI does) and confirm with a classification.
    amparo.cases.record_reveal(item["id"], "reviewer")
    decided = tc.post(
        f"/v1/cases/items/{item['id']}/decision",
        json={"kind": "confirm", "classification": "A1", "note": "checked"},
        headers=keys["reviewer"],
    )
    assert decided.status_code == 200, decided.text

    # The rule queued a report draft; it builds now that the case is confirmed.
    (draft,) = tc.get("/v1/reports", headers=keys["auditor"]).json()
    built = tc.post(f"/v1/reports/{draft['id']}/build", headers=keys["reviewer"])
    assert built.status_code == 200, built.text
    xml = tc.get(f"/v1/reports/{draft['id']}", params={"format": "xml"}, headers=keys["reviewer"])
    root = ET.fromstring(xml.text)
    files = root.findall(".//fileDetails")
    assert len(files) == 1
    assert files[0].findtext("fileViewedByEsp") == "true"
    assert files[0].findtext("industryClassification") == "A1"
    assert files[0].findtext("originalFileName") == "holiday.jpg"
    assert "acct-9" in xml.text

    submitted = tc.post(f"/v1/reports/{draft['id']}/submit", headers=keys["admin"])
    assert submitted.status_code == 200 and submitted.json()["status"] == "finished"
    (remote,) = standin.reports.values()
    (uploaded,) = remote.files.values()
    assert uploaded["sha256"] == hashlib.sha256(known).hexdigest()  # the preserved bytes
    assert uploaded["details"] is not None
    assert remote.finished

    out = Path(amparo.settings.home) / "package.zip"
    package = amparo.reports.package(draft["id"], out, actor="admin")
    with zipfile.ZipFile(package.path) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        custody = [json.loads(line) for line in zf.read("custody.jsonl").splitlines()]
    assert package.files == 1 and package.key is not None
    assert {"report.xml", "report.json", "manifest.json", "custody.jsonl"} <= names
    assert hashlib.sha256(known).hexdigest() in json.dumps(manifest)
    assert {"evidence.read", "case.decision"} <= {e["action"] for e in custody}

    verdict = tc.get("/v1/audit/verify", headers=keys["auditor"]).json()
    assert verdict["ok"] is True, verdict


def test_a_false_positive_is_not_kept(world: World) -> None:
    """Content a reviewer judges a false positive is discarded from the evidence store (its
    hashes stay on record), and the matched entry's false-positive count goes up."""
    tc, keys, _ = world
    amparo: Amparo = tc.app.state.service.amparo
    photo = _photo(3)
    amparo.banks.create(BankInfo(name="known"))
    amparo.banks.add_media("known", photo, category="B2")
    rule = {"name": "review", "actions": [{"type": "review"}]}
    assert tc.post("/v1/rules", json=rule, headers=keys["curator"]).status_code == 201
    hit = tc.post("/v1/match", files={"file": ("x.jpg", photo)}, headers=keys["matcher"])
    assert {a["action"]: a["outcome"] for a in hit.json()["actions"]} == {"review": "done"}
    (case,) = tc.get("/v1/cases", headers=keys["reviewer"]).json()
    (item,) = tc.get(f"/v1/cases/{case['id']}", headers=keys["reviewer"]).json()["items"]
    decided = tc.post(
        f"/v1/cases/items/{item['id']}/decision",
        json={"kind": "false_positive", "note": "a benign look-alike"},
        headers=keys["reviewer"],
    )
    assert decided.status_code == 200, decided.text
    entry_ids = {m["entry_id"] for m in item["matches"]}
    assert set(amparo.cases.false_positive_counts(sorted(entry_ids)).values()) == {1}
    # Kept through the undo grace (a slip of one key must not destroy evidence) ...
    assert amparo.evidence.get(item["evidence_id"]).held
    assert amparo.evidence.purge().false_positives == []
    assert amparo.evidence.read(item["evidence_id"], actor="test") == photo
    # ... and discarded by the purge after it.
    later = datetime.now(UTC) + timedelta(seconds=amparo.settings.review_undo_seconds + 1)
    assert amparo.evidence.purge(later).false_positives == [item["evidence_id"]]
    kept = amparo.evidence.get(item["evidence_id"])
    assert kept.purged_at is not None and kept.sha256 == hashlib.sha256(photo).hexdigest()
    with pytest.raises(AmparoError):
        amparo.evidence.read(item["evidence_id"], actor="test")
    (audited,) = amparo.store.audit_log.entries(action="evidence.discard")
    assert audited.target == f"evidence:{item['evidence_id']}"


def _video(seconds: int = 3) -> bytes:
    """A benign synthetic H.264 clip: moving colour gradients."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        y, x = np.mgrid[0:120, 0:160]
        for i in range(seconds * 10):
            pixels = np.stack([(x * 3 + i * 7) % 256, (y * 2) % 256, (x + y) % 256], axis=2)
            frame = av.VideoFrame.from_ndarray(pixels.astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def test_a_video_reaches_the_reviewer_only_when_revealed(world: World) -> None:
    """A video item's default rendition is a blurred greyscale picture of one frame (no video
    is sent); after a logged reveal the video itself is served."""
    tc, _, _ = world
    amparo: Amparo = tc.app.state.service.amparo
    clip = _video()
    sha = hashlib.sha256(clip).hexdigest()
    content = MatchedContent(
        sha256=sha,
        matches=(Match("known", 1, "md5", 0, category="A1"),),
        source=Source(kind="api", account_id="acct-3"),
        size=len(clip),
        media_kind="video",
    )
    kept = amparo.evidence.preserve(clip, content=content, reason="rule:review")
    case_id = amparo.cases.open_or_extend(content, evidence_id=kept.id, rule="review")
    item = amparo.cases.get(case_id).items[0]

    shielded = amparo.cases.media(item.id, "reviewer")
    assert shielded.mime == "image/jpeg"
    picture = Image.open(io.BytesIO(shielded.data))
    assert picture.mode == "L"
    with pytest.raises(AmparoError):
        amparo.cases.media(item.id, "reviewer", clear=True)  # no reveal yet
    amparo.cases.record_reveal(item.id, "reviewer")
    revealed = amparo.cases.media(item.id, "reviewer", clear=True)
    assert revealed.mime == "video/mp4" and revealed.data == clip
