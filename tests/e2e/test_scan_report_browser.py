"""The HTML scan report in a real headless Chromium, as an analyst opens it: ``amparo scan``
over a mixed folder (photos, a video, a zip, a corrupt photo and archive, an empty file)
writes the report; the page shows one row per matched file with every match, summary counts
equal to the JSONL report's of the same folder, no Python value anywhere in its text, the tool
version and each bank's provenance; its charts are drawn with no script and nothing refused by
its Content-Security-Policy; axe-core finds no serious problem; it prints to PDF. Screenshots
and the PDF are test artefacts (``$AMPARO_TEST_ARTEFACTS``, else the test's temporary folder).

All media is synthetic (numpy and Pillow, and PyAV for the video)."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from browser_support import BROWSER_MARKS, By, accessible, artefacts_dir, chromium
from PIL import Image
from typer.testing import CliRunner

from amparo import Amparo, BankInfo, __version__, load_settings
from amparo.cli.main import app

pytestmark = [pytest.mark.slow, *BROWSER_MARKS]
pytest.importorskip("axe_selenium_python", reason="axe-selenium-python missing")


def _photo(seed: int, fmt: str = "JPEG") -> bytes:
    rng = np.random.default_rng(seed)
    blocks = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
    out = io.BytesIO()
    image = Image.fromarray(blocks).resize((256, 256))
    if fmt == "JPEG":
        image.save(out, fmt, quality=90)
    else:
        image.save(out, fmt)
    return out.getvalue()


def _video() -> bytes | None:
    """Two seconds of a moving gradient (None where PyAV is missing)."""
    try:
        import av
    except ImportError:
        return None
    buf = io.BytesIO()
    ramp = np.linspace(0, 255, 96, dtype=np.uint8)
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i in range(20):
            frame = np.zeros((64, 96, 3), np.uint8)
            frame[:, :, 0] = np.roll(ramp, i * 4)[None, :]
            frame[:, :, 1] = 128
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = i
            for packet in stream.encode(video_frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


KNOWN_A, KNOWN_B, UNKNOWN = _photo(11), _photo(12), _photo(13)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        amparo.banks.create(
            BankInfo(name="test-list", source="Synthetic test list", supplier="Test Hotline")
        )
        amparo.banks.add_media("test-list", KNOWN_A, category="A1", source_id="case-1/a")
        amparo.banks.add_media("test-list", KNOWN_B, category="B2", source_id="case-1/b")
        amparo.banks.create(BankInfo(name="empty-list", supplier="Nobody yet"))
    return home


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    root = tmp_path / "evidence"
    (root / "photos").mkdir(parents=True)
    (root / "photos" / "a.jpg").write_bytes(KNOWN_A)
    # The same picture in other bytes: found by PDQ only.
    (root / "photos" / "a-copy.png").write_bytes(_photo(11, "PNG"))
    (root / "photos" / "other.jpg").write_bytes(UNKNOWN)
    (root / "photos" / "broken.jpg").write_bytes(UNKNOWN[: len(UNKNOWN) // 3])
    (root / "empty.dat").write_bytes(b"")
    (root / "notes.txt").write_text("plain text: digested only\n")
    with zipfile.ZipFile(root / "archive.zip", "w") as zf:
        zf.writestr("inside/b.jpg", KNOWN_B)
        zf.writestr("inside/other.jpg", UNKNOWN)
    (root / "damaged.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    video = _video()
    if video is not None:
        (root / "clip.mp4").write_bytes(video)
    return root


def _scan(home: Path, evidence: Path, report: Path, *more: str) -> None:
    args = ["--home", str(home), "scan", "--workers", "1", "--no-actions", str(evidence)]
    result = CliRunner().invoke(app, [*args, "--report", str(report), *more])
    assert result.exit_code == 1, result.output


def _number(text: str) -> int:
    return int(text.replace(",", "").strip())


def test_the_html_report_of_a_mixed_folder_in_chromium(
    home: Path, evidence: Path, tmp_path: Path
) -> None:
    artefacts = artefacts_dir(tmp_path, "scan-report")
    html_en, html_es, jsonl = (tmp_path / n for n in ("r.html", "r-es.html", "r.jsonl"))
    _scan(home, evidence, html_en, "--report-language", "en", "--operator", "Analyst Rivera")
    _scan(home, evidence, html_es, "--report-language", "es")
    _scan(home, evidence, jsonl)
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    summary = records[-1]
    per_file = Counter(r["path"] for r in records if r["kind"] == "match")
    assert summary["matched_files"] == len(per_file) == 3
    assert summary["errors"] >= 2 and summary["skipped"] >= 1

    with chromium("1280,1600", browser_log=True) as browser:
        browser.get(html_en.as_uri())
        assert browser.find_element(By.TAG_NAME, "h1").text == "Amparo scan report"
        text = browser.find_element(By.TAG_NAME, "body").text

        # One row per matched file, holding every match of that file.
        rows = browser.find_elements(By.CSS_SELECTOR, "table.files > tbody > tr.file")
        assert len(rows) == len(per_file)
        for row in rows:
            path = row.find_element(By.CSS_SELECTOR, "td .p").text
            hits = row.find_elements(By.CSS_SELECTOR, "table.hits > tbody > tr")
            assert len(hits) == per_file[path], path
        assert f"{evidence}/archive.zip!inside/b.jpg" in text

        # The summary's counts are the JSONL summary's.
        facts = {
            r.find_element(By.TAG_NAME, "th").text: r.find_element(By.TAG_NAME, "td").text
            for r in browser.find_elements(By.CSS_SELECTOR, "#summary table.facts tr")
        }
        for label, key in [
            ("Files seen", "files_seen"),
            ("Files hashed", "hashed"),
            ("Matched files", "matched_files"),
            ("Matches", "matches"),
            ("Errors", "errors"),
            ("Skipped files", "skipped"),
        ]:
            assert _number(facts[label]) == summary[key], label
        assert facts["Operator"] == "Analyst Rivera"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", facts["Started (UTC)"])

        # Errors grouped by reason; no Python value anywhere; version and provenance.
        errors = browser.find_element(By.ID, "errors").text
        assert "Damaged or unreadable image" in errors and "Damaged archive" in errors
        assert re.findall(r"\b(None|True|False)\b|[{}]", text) == []
        about = browser.find_element(By.ID, "about").text
        assert f"Amparo {__version__}" in about
        for shown in ("Synthetic test list", "Test Hotline", "test-list", "Nobody yet"):
            assert shown in about, shown

        # Two charts, drawn, with bars; nothing refused by the page's CSP.
        charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart[role='img']")
        assert len(charts) == 2 and all(c.size["width"] > 100 for c in charts)
        bars = browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.chart-bar")
        assert bars and all(float(b.get_attribute("width") or 0) > 0 for b in bars)
        accessible(browser, artefacts / "scan-report-en.png")
        refused = [
            e["message"]
            for e in browser.get_log("browser")
            if "Content Security Policy" in e.get("message", "")
        ]
        assert not refused, refused

        # Printed to PDF with the print stylesheet.
        pdf = base64.b64decode(browser.print_page())
        assert pdf.startswith(b"%PDF")
        (artefacts / "scan-report-en.pdf").write_bytes(pdf)

        browser.get(html_es.as_uri())
        assert browser.find_element(By.TAG_NAME, "h1").text == "Informe de análisis de Amparo"
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es"
        spanish = browser.find_element(By.TAG_NAME, "body").text
        assert "Archivos con coincidencias" in spanish and "Proveedor" in spanish
        assert len(browser.find_elements(By.CSS_SELECTOR, "tr.file")) == len(per_file)
        browser.save_screenshot(str(artefacts / "scan-report-es.png"))
    assert (artefacts / "scan-report-en.png").stat().st_size > 10_000
