"""The curator console in a real headless Chromium against a real server on loopback: a
curator signs in, disables a bank and sees ``/v1/lookup`` stop matching it (and enables it
again), edits a rule and sees the new version in its audit trail; a matcher and a reviewer key
are refused; a form without its CSRF token changes nothing. axe-core finds no serious or
critical accessibility problem on any page; screenshots are written as test artefacts
(``$AMPARO_TEST_ARTEFACTS/console``, else the test's temporary directory).

The bank holds one MD5 (of the empty string); no media anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import (
    BROWSER_MARKS,
    By,
    WebDriverWait,
    accessible,
    artefacts_dir,
    chromium,
    serving,
)
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

from amparo.actions import Rule
from amparo.app import Amparo
from amparo.banks.model import BankInfo, EntryRecord
from amparo.config import Settings
from amparo.events import MatchedContent, Source
from amparo.keys import KeyService
from amparo.matching import Match

pytestmark = [pytest.mark.slow, *BROWSER_MARKS]
pytest.importorskip("axe_selenium_python", reason="axe-selenium-python missing")

MD5 = "d41d8cd98f00b204e9800998ecf8427e"


@dataclass
class Served:
    base: str
    amparo: Amparo
    keys: dict[str, str]

    def lookup(self) -> list[str]:
        """The banks ``/v1/lookup`` names for the bank's MD5, asked with the matcher key."""
        r = httpx.get(
            self.base + "/v1/lookup",
            params={"signal_type": "md5", "signal": MD5},
            headers={"X-API-Key": self.keys["matcher"]},
        )
        assert r.status_code == 200, r.text
        return [m["bank"] for m in r.json()["matches"]]


@pytest.fixture
def served(sqlite_settings: Settings) -> Iterator[Served]:
    settings = replace(sqlite_settings, hotline_in_serve=False, exchange_in_serve=False)
    amparo = Amparo(settings)
    service = KeyService(amparo.store)
    keys = {
        who: service.create(who, [who], actor="test").secret
        for who in ("curator", "matcher", "reviewer")
    }
    amparo.banks.create(
        BankInfo("known", source="Test hotline list", supplier="Test NGO", terms="tests only"),
        actor="test",
    )
    amparo.banks.add_entries(
        "known", [EntryRecord("md5", MD5, category="A1", source_id="src-1")], actor="test"
    )
    amparo.actions.add_rule(
        Rule.from_json({"name": "to-review", "actions": [{"type": "review"}]}), actor="test"
    )
    # A find the rules sent for review: the overview's queue and chart count it.
    amparo.cases.open_or_extend(
        MatchedContent(
            sha256="e" * 64,
            matches=(Match("known", 1, "md5", 0, category="A1"),),
            source=Source(account_id="acct"),
        ),
        rule="to-review",
    )
    with serving(settings, amparo) as base:
        yield Served(base, amparo, keys)


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium("1280,1400", browser_log=True) as driver:
        yield driver


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    return artefacts_dir(tmp_path, "console")


def sign_in(browser: Any, base: str, key: str) -> None:
    browser.get(base + "/console/signin")
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.ID, "signin").click()
    WebDriverWait(browser, 10).until(
        lambda d: "/console/signin" not in d.current_url or d.find_elements(By.ID, "signin-error")
    )


def bank_row(browser: Any) -> Any:
    return browser.find_element(By.CSS_SELECTOR, "tr[data-bank='known']")


def bank_is(state: str) -> Any:
    """A wait condition: the bank's row says ``state`` (the page may be reloading)."""

    def check(browser: Any) -> bool:
        try:
            cell = browser.find_element(By.CSS_SELECTOR, "tr[data-bank='known'] td.state")
            return bool(cell.text.strip() == state)
        except (NoSuchElementException, StaleElementReferenceException):
            return False

    return check


def no_csp_violations(browser: Any) -> None:
    problems = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not [p for p in problems if "Content Security Policy" in p], problems


def test_disable_a_bank_and_lookups_stop_matching_it(
    served: Served, browser: Any, artefacts: Path
) -> None:
    assert served.lookup() == ["known"]
    sign_in(browser, served.base, served.keys["curator"])
    assert browser.current_url.rstrip("/").endswith("/console")
    row = bank_row(browser)
    assert "Test hotline list" in row.text and "Test NGO" in row.text and "enabled" in row.text
    assert browser.find_element(By.ID, "queue-waiting").text == "1"
    chart = browser.find_element(By.CSS_SELECTOR, "svg.chart[role='img']")
    assert chart.size["width"] > 100 and "known" in chart.get_attribute("aria-labelledby") + (
        browser.find_element(By.CSS_SELECTOR, "figure.chart-box figcaption").text
    )
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.chart-bar")
    accessible(browser, artefacts / "overview.png")

    row.find_element(By.CSS_SELECTOR, "button.bank-switch").click()
    WebDriverWait(browser, 10).until(bank_is("disabled"))
    assert served.lookup() == []
    assert not served.amparo.banks.get("known").enabled
    accessible(browser, artefacts / "bank-disabled.png")

    bank_row(browser).find_element(By.CSS_SELECTOR, "button.bank-switch").click()
    WebDriverWait(browser, 10).until(bank_is("enabled"))
    assert served.lookup() == ["known"]
    no_csp_violations(browser)


def test_edit_a_rule_and_see_it_audited(served: Served, browser: Any, artefacts: Path) -> None:
    sign_in(browser, served.base, served.keys["curator"])
    browser.get(served.base + "/console/rules")
    accessible(browser, artefacts / "rules.png")
    browser.find_element(By.LINK_TEXT, "to-review").click()
    banks = browser.find_element(By.ID, "banks")
    banks.clear()
    banks.send_keys("known")
    distance = browser.find_element(By.ID, "max_distance")
    distance.clear()
    distance.send_keys("16")
    browser.find_element(By.ID, "save-rule").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.ID, "saved"))
    rule = served.amparo.actions.get_rule("to-review")
    assert rule.version == 2 and rule.conditions.banks == ("known",)
    assert rule.conditions.max_distance == 16 and rule.created_by == "key:curator"
    trail = browser.find_element(By.ID, "trail").text
    assert "rule.update" in trail and "key:curator" in trail and "rule.create" in trail
    assert len(browser.find_elements(By.CSS_SELECTOR, "#versions tbody tr")) == 2

    # Try it: a match in another bank would not make it act.
    browser.find_element(By.ID, "try-bank").send_keys("other")
    browser.find_element(By.ID, "try-rule").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.ID, "tried"))
    assert "would not act" in browser.find_element(By.ID, "tried").text
    accessible(browser, artefacts / "rule.png")
    no_csp_violations(browser)


@pytest.mark.parametrize("who", ["matcher", "reviewer"])
def test_matcher_and_reviewer_keys_are_refused(
    served: Served, browser: Any, artefacts: Path, who: str
) -> None:
    sign_in(browser, served.base, served.keys[who])
    error = browser.find_element(By.ID, "signin-error")
    assert "curator or admin" in error.text
    assert "/console/signin" in browser.current_url
    accessible(browser, artefacts / f"refused-{who}.png")
    browser.get(served.base + "/console")
    assert "/console/signin" in browser.current_url  # no session was opened


def test_a_form_without_its_token_changes_nothing(
    served: Served, browser: Any, artefacts: Path
) -> None:
    sign_in(browser, served.base, served.keys["curator"])
    # Drop the form's token before submitting it.
    browser.execute_script(
        "document.querySelectorAll('tr[data-bank] input[name=csrf]')"
        ".forEach(function (e) { e.remove(); });"
    )
    bank_row(browser).find_element(By.CSS_SELECTOR, "button.bank-switch").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.ID, "error-message"))
    assert "security token" in browser.find_element(By.ID, "error-message").text
    accessible(browser, artefacts / "csrf-refused.png")
    assert served.amparo.banks.get("known").enabled
    assert served.lookup() == ["known"]
