"""The public report page in a real headless Chromium against a real server on loopback: a
report filled in and sent in Spanish, the language switched to Portuguese (and remembered), a
refusal explained; each page passes axe-core with no serious or critical violation.
Screenshots go to ``$AMPARO_TEST_ARTEFACTS/hotline-report`` (else the test's temporary
directory). No media anywhere: the page never asks for any."""

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
)

from amparo.app import Amparo
from amparo.config import Settings

pytestmark = [pytest.mark.slow, *BROWSER_MARKS]
pytest.importorskip("axe_selenium_python", reason="axe-selenium-python missing")


@dataclass
class Served:
    base: str
    amparo: Amparo


@pytest.fixture
def served(sqlite_settings: Settings) -> Iterator[Served]:
    settings = replace(sqlite_settings, hotline_in_serve=False, report_rate_limit="20/600")
    amparo = Amparo(settings)
    with serving(settings, amparo) as base:
        yield Served(base, amparo)


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium("1100,1400") as driver:
        yield driver


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    return artefacts_dir(tmp_path, "hotline-report")


def _accessible(browser: Any, artefacts: Path, name: str) -> None:
    accessible(browser, artefacts / f"{name}.png")


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
