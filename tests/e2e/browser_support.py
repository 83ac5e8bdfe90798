"""What the headless-Chromium tests share: the app served by uvicorn on a free loopback port, a
headless Chromium driver, signing in to the review pages, a place for screenshots and the
axe-core accessibility check.

Importing this module skips the importing test module where selenium is not installed;
``BROWSER_MARKS`` skips it where Chromium or chromedriver is missing."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from amparo.api import create_app
from amparo.app import Amparo
from amparo.config import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

BROWSER_MARKS = [
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="browser tests need /usr/bin/chromium and /usr/bin/chromedriver "
        "(Debian: apt-get install chromium chromium-driver; `make browser`)",
    ),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

__all__ = [
    "BROWSER_MARKS",
    "EC",
    "By",
    "WebDriverWait",
    "accessible",
    "artefacts_dir",
    "chromium",
    "serving",
    "sign_in",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(settings: Settings, amparo: Amparo) -> Iterator[str]:
    """Serve the app for ``amparo`` on a free loopback port and give its base URL; on exit
    stop the server and close ``amparo``."""
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
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        amparo.close()


@contextmanager
def chromium(window_size: str, *, browser_log: bool = False) -> Iterator[Any]:
    """A headless Chromium driver with a throw-away profile; ``browser_log`` keeps the
    console log (``driver.get_log("browser")``)."""
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
        f"--window-size={window_size}",
    ):
        options.add_argument(arg)
    if browser_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def sign_in(browser: Any, base: str, key: str, *, wait: bool = False) -> None:
    """Fill in the review sign-in form; with ``wait``, until the page has moved on."""
    browser.get(base + "/review/signin")
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.ID, "signin").click()
    if wait:
        WebDriverWait(browser, 10).until(lambda d: "/review/signin" not in d.current_url)


def artefacts_dir(tmp_path: Path, name: str) -> Path:
    """Where screenshots go: ``$AMPARO_TEST_ARTEFACTS/<name>``, else under ``tmp_path``."""
    where = os.environ.get("AMPARO_TEST_ARTEFACTS")
    path = Path(where) / name if where else tmp_path / "artefacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def accessible(browser: Any, screenshot: Path) -> None:
    """Save a screenshot of the page, then assert axe-core finds no serious or critical
    violation on it."""
    import axe_selenium_python as axe_selenium

    browser.save_screenshot(str(screenshot))
    axe = axe_selenium.Axe(browser)
    axe.inject()
    results = axe.run()
    violations = [v for v in results["violations"] if v.get("impact") in ("serious", "critical")]
    assert not violations, [(v["id"], v["help"], len(v["nodes"])) for v in violations]
