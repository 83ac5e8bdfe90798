"""The hotline's stats page in a real headless Chromium against a real server on loopback: a
reviewer signs in, opens the figures in Spanish, switches to Portuguese and English, sees the
charts drawn (inline SVG, no script, no CSP violation), and axe-core finds no serious or
critical accessibility problem. Screenshots are written as test artefacts
(``$AMPARO_TEST_ARTEFACTS``, else the test's temporary directory).

The reports behind the figures are rows written through the repository; no media."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from hotline_stats_data import ODD_PROVIDER, populate

from amparo.api import create_app
from amparo.app import Amparo
from amparo.config import Settings
from amparo.keys import KeyService

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="browser tests need /usr/bin/chromium and /usr/bin/chromedriver "
        "(Debian: apt-get install chromium chromium-driver; `make browser`)",
    ),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
axe_selenium = pytest.importorskip("axe_selenium_python", reason="axe-selenium-python missing")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@dataclass
class Served:
    base: str
    amparo: Amparo
    key: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(sqlite_settings: Settings) -> Iterator[Served]:
    settings = replace(sqlite_settings, hotline_in_serve=False)
    amparo = Amparo(settings)
    key = KeyService(amparo.store).create("rita", ["reviewer"], actor="test").secret
    populate(amparo.hotline.records)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, amparo=amparo), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", amparo, key)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        amparo.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="amparo-chromium-")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1280,1400",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    where = os.environ.get("AMPARO_TEST_ARTEFACTS")
    path = Path(where) / "hotline-stats" if where else tmp_path / "artefacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sign_in(browser: Any, base: str, key: str) -> None:
    browser.get(base + "/review/signin")
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.ID, "signin").click()
    WebDriverWait(browser, 10).until(lambda d: "/review/signin" not in d.current_url)


def _serious_violations(browser: Any) -> list[dict[str, Any]]:
    axe = axe_selenium.Axe(browser)
    axe.inject()
    results = axe.run()
    return [v for v in results["violations"] if v.get("impact") in ("serious", "critical")]


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
    _sign_in(browser, served.base, served.key)
    browser.get(served.base + "/review/hotline/stats?lang=es")
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "hotline-stats")))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Cifras de la línea de denuncia"
    root = browser.find_element(By.ID, "hotline-stats")
    assert root.get_attribute("lang") == "es"
    _charts_drawn(browser)
    providers = browser.find_element(By.ID, "by-provider").text
    assert ODD_PROVIDER in providers and "desconocido" in providers
    assert "México (MX)" in browser.find_element(By.ID, "by-country").text
    browser.save_screenshot(str(artefacts / "stats-es.png"))
    violations = _serious_violations(browser)
    assert not violations, axe_selenium.Axe(browser).report(violations)

    browser.find_element(By.ID, "lang-pt_BR").click()
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "h1").text == "Números do canal de denúncia"
    )
    assert "lang=pt_BR" in browser.current_url
    _charts_drawn(browser)
    browser.save_screenshot(str(artefacts / "stats-pt_BR.png"))
    violations = _serious_violations(browser)
    assert not violations, axe_selenium.Axe(browser).report(violations)

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
