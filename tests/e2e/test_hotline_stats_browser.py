"""The hotline's stats page in a real headless Chromium against a real server on loopback: a
reviewer signs in, opens the figures in Spanish, switches to Portuguese and English, sees the
charts drawn (inline SVG, no script, no CSP violation), and axe-core finds no serious or
critical accessibility problem. Screenshots are written as test artefacts
(``$AMPARO_TEST_ARTEFACTS``, else the test's temporary directory).

The reports behind the figures are rows written through the repository; no media."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    BROWSER_MARKS,
    EC,
    By,
    WebDriverWait,
    accessible,
    artefacts_dir,
    chromium,
    serving,
    sign_in,
)
from hotline_stats_data import ODD_PROVIDER, populate

from amparo.app import Amparo
from amparo.config import Settings
from amparo.keys import KeyService

pytestmark = [pytest.mark.slow, *BROWSER_MARKS]
pytest.importorskip("axe_selenium_python", reason="axe-selenium-python missing")


@dataclass
class Served:
    base: str
    amparo: Amparo
    key: str


@pytest.fixture
def served(sqlite_settings: Settings) -> Iterator[Served]:
    settings = replace(sqlite_settings, hotline_in_serve=False)
    amparo = Amparo(settings)
    key = KeyService(amparo.store).create("rita", ["reviewer"], actor="test").secret
    populate(amparo.hotline.records)
    with serving(settings, amparo) as base:
        yield Served(base, amparo, key)


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium("1280,1400", browser_log=True) as driver:
        yield driver


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    return artefacts_dir(tmp_path, "hotline-stats")


def _charts_drawn(browser: Any) -> list[Any]:
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart[role='img']")
    assert len(charts) == 3
    for chart in charts:
        size = chart.size
        assert size["width"] > 100 and size["height"] > 20, size
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.chart-bar")
    assert bars and any(float(b.get_attribute("width") or 0) > 0 for b in bars)
    # Coloured by the stylesheet (class rules), not by inline styles.
    fill = browser.execute_script(
        "return getComputedStyle(document.querySelector('rect.chart-bar')).fill"
    )
    assert fill == "rgb(36, 80, 122)", fill
    return list(charts)


def test_stats_page_in_the_browser(served: Served, browser: Any, artefacts: Path) -> None:
    sign_in(browser, served.base, served.key, wait=True)
    browser.get(served.base + "/review/hotline/stats?lang=es")
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "hotline-stats")))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Cifras de la línea de denuncia"
    root = browser.find_element(By.ID, "hotline-stats")
    assert root.get_attribute("lang") == "es"
    _charts_drawn(browser)
    providers = browser.find_element(By.ID, "by-provider").text
    assert ODD_PROVIDER in providers and "desconocido" in providers
    assert "México (MX)" in browser.find_element(By.ID, "by-country").text
    accessible(browser, artefacts / "stats-es.png")

    browser.find_element(By.ID, "lang-pt_BR").click()
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "h1").text == "Números do canal de denúncia"
    )
    assert "lang=pt_BR" in browser.current_url
    _charts_drawn(browser)
    accessible(browser, artefacts / "stats-pt_BR.png")

    browser.find_element(By.ID, "lang-en").click()
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "h1").text == "Hotline figures"
    )
    browser.save_screenshot(str(artefacts / "stats-en.png"))
    assert (artefacts / "stats-es.png").stat().st_size > 10_000

    # Nothing the page does is refused by its Content-Security-Policy.
    refused = [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry.get("message", "")
    ]
    assert not refused, refused
