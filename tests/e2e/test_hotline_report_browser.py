"""The public report page in a real headless Chromium against a real server on loopback: a
report filled in and sent in Spanish, the language switched to Portuguese (and remembered), a
refusal explained; each page passes axe-core with no serious or critical violation.
Screenshots go to ``$AMPARO_TEST_ARTEFACTS/hotline-report`` (else the test's temporary
directory). No media anywhere: the page never asks for any."""

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

from amparo.api import create_app
from amparo.app import Amparo
from amparo.config import Settings

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(sqlite_settings: Settings) -> Iterator[Served]:
    settings = replace(sqlite_settings, hotline_in_serve=False, report_rate_limit="20/600")
    amparo = Amparo(settings)
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
        yield Served(f"http://127.0.0.1:{port}", amparo)
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
        "--window-size=1100,1400",
    ):
        options.add_argument(arg)
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
    path = Path(where) / "hotline-report" if where else tmp_path / "artefacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _serious_violations(browser: Any) -> list[dict[str, Any]]:
    axe = axe_selenium.Axe(browser)
    axe.inject()
    results = axe.run()
    return [v for v in results["violations"] if v.get("impact") in ("serious", "critical")]


def _accessible(browser: Any, artefacts: Path, name: str) -> None:
    browser.save_screenshot(str(artefacts / f"{name}.png"))
    violations = _serious_violations(browser)
    assert not violations, [(v["id"], v["help"], len(v["nodes"])) for v in violations]


def test_report_in_spanish_switch_language_and_refusal(
    served: Served, browser: Any, artefacts: Path
) -> None:
    wait = WebDriverWait(browser, 10)
    browser.get(served.base + "/report?lang=es")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es"
    assert "material de abuso sexual infantil" in browser.find_element(By.TAG_NAME, "h1").text
    assert not browser.find_elements(By.CSS_SELECTOR, "input[type=file]")
    label = browser.find_element(By.CSS_SELECTOR, "label[for=url]").text
    assert "Dirección (URL)" in label
    _accessible(browser, artefacts, "report-es")

    browser.find_element(By.ID, "url").send_keys("ejemplo.mx/galería?utm_source=chat")
    browser.find_element(By.ID, "contact").send_keys("+52 55 1234 5678")
    browser.find_element(By.ID, "comment").send_keys("Al final de la página.")
    browser.find_element(By.ID, "send").click()
    thanks = wait.until(EC.presence_of_element_located((By.ID, "thanks")))
    assert thanks.text == "Gracias. Recibimos su denuncia."
    _accessible(browser, artefacts, "thanks-es")
    (report,) = served.amparo.hotline.records.list()
    assert report.url == "http://ejemplo.mx/galer%C3%ADa" and report.language == "es"

    browser.find_element(By.ID, "again").click()
    wait.until(EC.presence_of_element_located((By.ID, "lang-pt_BR"))).click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "pt-BR")
    assert "Enviar denúncia" in browser.find_element(By.ID, "send").text
    _accessible(browser, artefacts, "report-pt_BR")

    browser.find_element(By.ID, "url").send_keys("http://10.1.2.3/fotos")
    browser.find_element(By.ID, "send").click()
    error = wait.until(EC.presence_of_element_located((By.ID, "report-error")))
    assert "rede privada ou local" in error.text
    assert browser.find_element(By.ID, "url").get_attribute("aria-invalid") == "true"
    _accessible(browser, artefacts, "refused-pt_BR")

    browser.get(served.base + "/report")  # the choice is remembered
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "pt-BR"
    assert served.amparo.hotline.records.count() == 1
