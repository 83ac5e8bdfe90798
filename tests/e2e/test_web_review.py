"""The reviewer web UI in a real headless Chromium against a real server on loopback: sign-in
(a wrong key cannot), a case page whose media is blurred and greyscale on screen, a reveal that
shows it for a few seconds and is logged, a decision by keyboard shortcut that is audited.

Media is a benign scikit-image sample photo standing in for preserved evidence."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser_support import BROWSER_MARKS, EC, By, WebDriverWait, chromium, serving, sign_in
from PIL import Image
from test_api_support import photo

from amparo.app import Amparo
from amparo.config import Settings
from amparo.events import MatchedContent, Source
from amparo.keys import KeyService
from amparo.matching import Match

REVEAL_SECONDS = 3

pytestmark = BROWSER_MARKS

PHOTO = photo("coffee")  # colourful and detailed: blurring and greyscale are easy to measure


@dataclass
class Served:
    base: str
    amparo: Amparo
    keys: dict[str, str]
    case_id: int
    item_id: int


@pytest.fixture
def served(sqlite_settings: Settings) -> Iterator[Served]:
    settings = replace(sqlite_settings, review_reveal_seconds=REVEAL_SECONDS)
    amparo = Amparo(settings)
    service = KeyService(amparo.store)
    keys = {s: service.create(s, [s], actor="test").secret for s in ("reviewer", "matcher")}
    content = MatchedContent(
        sha256=hashlib.sha256(PHOTO).hexdigest(),
        matches=(Match("known", 7, "pdq", 6, category="A2", tags=("series-x",)),),
        source=Source(kind="api", account_id="acct-1", upload_id="up-9", file_name="up.jpg"),
        md5=hashlib.md5(PHOTO).hexdigest(),
        size=len(PHOTO),
        media_kind="photo",
        at=datetime.now(UTC),
    )
    # The real evidence store: the case page shows the preserved, encrypted copy.
    item = amparo.evidence.preserve(PHOTO, content=content, reason="rule:review-all")
    case_id = amparo.cases.open_or_extend(content, evidence_id=item.id, rule="review-all")
    item_id = amparo.cases.get(case_id).items[0].id
    with serving(settings, amparo) as base:
        yield Served(base, amparo, keys, case_id, item_id)


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium("1280,1100") as driver:
        yield driver


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)


def _saturation(rgb: np.ndarray) -> float:
    """Mean HSV saturation (0-1): 0 for greyscale."""
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    return float(np.where(high > 0, (high - low) / np.maximum(high, 1), 0).mean())


def _detail(rgb: np.ndarray) -> float:
    """Mean absolute difference of neighbouring pixels: high when sharp, near 0 when blurred."""
    grey = rgb.mean(axis=2)
    return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())


def _media_loaded(browser: Any) -> bool:
    return bool(
        browser.execute_script(
            "const m = document.getElementById('media'); return m.complete && m.naturalWidth > 0;"
        )
    )


def test_wrong_key_cannotsign_in(served: Served, browser: Any) -> None:
    for key in ("amp_000000000000_wrong", served.keys["matcher"]):
        sign_in(browser, served.base, key)
        error = WebDriverWait(browser, 10).until(
            EC.visibility_of_element_located((By.ID, "signin-error"))
        )
        assert "cannot sign in" in error.text
        assert browser.get_cookie("amparo_review") is None
    browser.get(served.base + "/review/queue")
    assert browser.current_url.endswith("/review/signin")


def test_review_a_case_in_the_browser(served: Served, browser: Any, tmp_path: Path) -> None:
    sign_in(browser, served.base, served.keys["reviewer"])
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "queue")))
    cookie = browser.get_cookie("amparo_review")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    browser.find_element(By.CSS_SELECTOR, f'a[href="/review/cases/{served.case_id}"]').click()
    WebDriverWait(browser, 10).until(lambda b: _media_loaded(b))
    page = browser.find_element(By.TAG_NAME, "body").text
    # Hashes and metadata are on the page.
    assert hashlib.sha256(PHOTO).hexdigest() in page
    assert "series-x" in page and "acct-1" in page

    # On screen, the media is blurred and greyscale: compare with the original photo.
    media = browser.find_element(By.ID, "media")
    shielded_png = media.screenshot_as_png
    (tmp_path / "shielded.png").write_bytes(shielded_png)
    browser.save_screenshot(str(tmp_path / "case-page.png"))
    shielded = _png(shielded_png)
    original = _png(PHOTO)
    original_small = np.asarray(
        Image.open(io.BytesIO(PHOTO)).convert("RGB").resize(shielded.shape[1::-1]),
        dtype=np.float64,
    )
    assert _saturation(original_small) > 0.3
    assert _saturation(shielded) < 0.02
    assert _detail(shielded) < _detail(original_small) / 8
    assert original.shape[0] > 0

    # A deliberate reveal ("r") shows the clear image for a few seconds, then blurs it again.
    browser.find_element(By.TAG_NAME, "body").send_keys("r")
    WebDriverWait(browser, 10).until(
        lambda b: (
            "revealed" in b.find_element(By.ID, "media").get_attribute("class") and _media_loaded(b)
        )
    )
    revealed_png = browser.find_element(By.ID, "media").screenshot_as_png
    (tmp_path / "revealed.png").write_bytes(revealed_png)
    revealed = _png(revealed_png)
    assert _saturation(revealed) > 0.2 and _detail(revealed) > 4 * _detail(shielded)
    assert browser.find_element(By.ID, "exposure-count").text == "1"
    # "N left today" follows the reveal's answer, not the count the page was served with.
    left = served.amparo.settings.review_daily_limit - 1
    assert browser.find_element(By.ID, "exposure-left").text == str(left)
    WebDriverWait(browser, REVEAL_SECONDS + 5).until(
        lambda b: "shielded" in b.find_element(By.ID, "media").get_attribute("class")
    )
    reveals = [a for a in served.amparo.audit.entries(50) if a.action == "case.reveal"]
    assert [(a.actor, a.details["item"]) for a in reveals] == [("key:reviewer", served.item_id)]
    assert served.amparo.cases.item(served.item_id).viewed

    # "?" shows the shortcuts; "3" confirms as B1.
    browser.find_element(By.TAG_NAME, "body").send_keys("?")
    help_text = browser.find_element(By.ID, "help").text
    assert "false positive" in help_text and "escalate" in help_text
    browser.find_element(By.TAG_NAME, "body").send_keys("\ue00c")  # Escape closes the dialog
    WebDriverWait(browser, 5).until(
        lambda b: not b.execute_script("return document.getElementById('help').open")
    )
    browser.find_element(By.ID, "note").send_keys("checked against the bank entry")
    browser.find_element(By.ID, "note").send_keys("\ue00c")  # Escape leaves the note
    browser.find_element(By.TAG_NAME, "body").send_keys("3")
    WebDriverWait(browser, 10).until(lambda b: "/review/queue" in b.current_url)
    decision = served.amparo.cases.item(served.item_id).decision
    assert decision is not None
    assert (decision.kind, decision.classification, decision.reviewer) == (
        "confirm",
        "B1",
        "reviewer",
    )
    assert decision.note == "checked against the bank entry"
    audited = [a for a in served.amparo.audit.entries(50) if a.action == "case.decision"]
    assert len(audited) == 1 and audited[0].actor == "key:reviewer"
    assert audited[0].details["kind"] == "confirm" and audited[0].details["classification"] == "B1"


def _clip() -> bytes:
    """A benign synthetic H.264 clip (moving colour gradients), 3 s at 10 fps."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        y, x = np.mgrid[0:240, 0:320]
        for i in range(30):
            pixels = np.stack([(x + i * 7) % 256, (y * 2) % 256, (x + y) % 256], axis=2)
            frame = av.VideoFrame.from_ndarray(pixels.astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def test_a_video_is_a_blurred_frame_until_revealed(served: Served, browser: Any) -> None:
    """No video reaches the page until a reveal: a blurred greyscale picture of a frame is
    shown; the reveal swaps in the video, muted, and it leaves the page again afterwards."""
    clip = _clip()
    content = MatchedContent(
        sha256=hashlib.sha256(clip).hexdigest(),
        matches=(Match("known", 8, "md5", 0, category="A2"),),
        source=Source(kind="api", account_id="acct-7"),
        size=len(clip),
        media_kind="video",
    )
    kept = served.amparo.evidence.preserve(clip, content=content, reason="rule:review-all")
    case_id = served.amparo.cases.open_or_extend(content, evidence_id=kept.id, rule="review-all")
    sign_in(browser, served.base, served.keys["reviewer"])
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "queue")))
    browser.get(f"{served.base}/review/cases/{case_id}")
    WebDriverWait(browser, 10).until(lambda b: _media_loaded(b))
    media = browser.find_element(By.ID, "media")
    assert media.tag_name == "img" and "shielded" in media.get_attribute("class")
    assert not browser.find_elements(By.TAG_NAME, "video")
    assert _saturation(_png(media.screenshot_as_png)) < 0.02

    browser.find_element(By.TAG_NAME, "body").send_keys("r")
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.TAG_NAME, "video"))
    video = browser.find_element(By.ID, "media")
    assert video.tag_name == "video" and "revealed" in video.get_attribute("class")
    assert browser.execute_script("return document.getElementById('media').muted") is True
    WebDriverWait(browser, REVEAL_SECONDS + 5).until(
        lambda b: not b.find_elements(By.TAG_NAME, "video")
    )
    assert "shielded" in browser.find_element(By.ID, "media").get_attribute("class")


def test_false_positive_asks_to_confirm_and_can_be_undone(served: Served, browser: Any) -> None:
    """`f` alone records nothing (it asks; Esc goes back); Enter confirms; the next page
    offers to undo, `u` does; the preserved copy is kept throughout."""
    sign_in(browser, served.base, served.keys["reviewer"])
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "queue")))
    case_url = f"{served.base}/review/cases/{served.case_id}"
    browser.get(case_url)
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "decide")))
    label = browser.find_element(By.CSS_SELECTOR, f'a[data-item="{served.item_id}"]').text
    assert label == f"item #{served.item_id}"
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("f")
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "confirm-fp")))
    assert "false positive?" in browser.find_element(By.ID, "confirm-title").text
    assert served.amparo.cases.item(served.item_id).decision is None
    browser.find_element(By.TAG_NAME, "body").send_keys("f")  # a second f does not confirm
    assert served.amparo.cases.item(served.item_id).decision is None
    browser.switch_to.active_element.send_keys("\ue00c")  # Escape: back to the item
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "decide")))
    assert served.amparo.cases.item(served.item_id).decision is None

    browser.find_element(By.TAG_NAME, "body").send_keys("f")
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "confirm-yes")))
    browser.switch_to.active_element.send_keys("\ue007")  # Enter on the focused "Yes"
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "undo-offer")))
    decision = served.amparo.cases.item(served.item_id).decision
    assert decision is not None and decision.kind == "false_positive"
    evidence_id = served.amparo.cases.item(served.item_id).evidence_id
    assert evidence_id is not None and served.amparo.evidence.get(evidence_id).held
    assert (
        "preserved copy is discarded after that" in browser.find_element(By.ID, "undo-offer").text
    )

    browser.find_element(By.TAG_NAME, "body").send_keys("u")
    WebDriverWait(browser, 10).until(
        lambda b: b.current_url.endswith(f"/review/cases/{served.case_id}?item={served.item_id}")
    )
    assert served.amparo.cases.item(served.item_id).decision is None
    assert served.amparo.evidence.get(evidence_id).held
    undone = [a for a in served.amparo.audit.entries(50) if a.action == "case.decision_undone"]
    assert [(a.actor, a.details["kind"]) for a in undone] == [("key:reviewer", "false_positive")]
