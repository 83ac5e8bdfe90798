"""The curator console (``/console``) through the app in-process: who may sign in, the
security headers, CSRF, and every route's answer to bad input (a 4xx page, never a 500).
The browser flows are in ``test_console.py``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from test_api_support import QUIET, Api, api, sqlite_api

from amparo.app import Amparo
from amparo.events import MatchedContent, Source
from amparo.exchanges.model import Collaboration
from amparo.matching import Match
from amparo.web.pages import SECURITY_HEADERS

__all__ = ["api", "sqlite_api"]
pytestmark = QUIET

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SRC = Path(__file__).resolve().parents[2] / "src" / "amparo"


def core(api: Api) -> Amparo:
    amparo: Amparo = api.client.app.state.service.amparo  # type: ignore[attr-defined]
    return amparo


def sign_in(client: TestClient, key: str) -> tuple[int, str]:
    page = client.get("/console/signin")
    pre = re.search(r'name="pre" value="([^"]+)"', page.text)
    assert pre is not None
    r = client.post(
        "/console/signin", data={"key": key, "pre": pre.group(1)}, follow_redirects=False
    )
    return r.status_code, r.text


def csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/console").text)
    assert found is not None
    return found.group(1)


def with_bank(api: Api) -> None:
    cur = api.as_("curator")
    c = api.client
    assert c.post("/v1/banks", json={"name": "known", "source": "NGO list"}, headers=cur).is_success
    body = {"entries": [{"signal_type": "md5", "signal": MD5, "source_id": "src-7"}]}
    assert c.post("/v1/banks/known/entries", json=body, headers=cur).is_success


@pytest.mark.parametrize("who", ["curator", "admin"])
def test_curators_and_admins_sign_in_and_see_the_overview(sqlite_api: Api, who: str) -> None:
    api, c = sqlite_api, sqlite_api.client
    with_bank(api)
    status, _ = sign_in(c, api.keys[who])
    assert status == 303
    page = c.get("/console")
    assert page.status_code == 200
    assert 'data-bank="known"' in page.text and "NGO list" in page.text
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value
    # No script and no media on any console page.
    assert "<script" not in page.text and "<img" not in page.text


@pytest.mark.parametrize("who", ["matcher", "reviewer", "hasher", "auditor"])
def test_other_keys_are_refused(sqlite_api: Api, who: str) -> None:
    status, text = sign_in(sqlite_api.client, sqlite_api.keys[who])
    assert status == 403 and 'id="signin-error"' in text and "curator or admin" in text
    assert sqlite_api.client.get("/console", follow_redirects=False).status_code == 303


def test_a_wrong_key_and_an_expired_form(sqlite_api: Api) -> None:
    c = sqlite_api.client
    assert sign_in(c, "amp_000000000000_nope")[0] == 401
    r = c.post("/console/signin", data={"key": sqlite_api.keys["curator"], "pre": "x"})
    assert r.status_code == 400 and "expired" in r.text


def test_a_review_session_opens_nothing_here(sqlite_api: Api) -> None:
    c = sqlite_api.client
    page = c.get("/review/signin")
    pre = re.search(r'name="pre" value="([^"]+)"', page.text)
    assert pre is not None
    c.post("/review/signin", data={"key": sqlite_api.keys["admin"], "pre": pre.group(1)})
    assert c.get("/console", follow_redirects=False).headers["location"] == "/console/signin"


def test_posts_without_the_token_are_refused(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    with_bank(api)
    sign_in(c, api.keys["curator"])
    for path in (
        "/console/banks/known/disable",
        "/console/rules",
        "/console/webhooks",
        "/console/signout",
    ):
        r = c.post(path, data={"name": "x"})
        assert r.status_code == 403, path
        assert "security token" in r.text
    assert core(api).banks.get("known").enabled
    # The right token, but from another site.
    r = c.post(
        "/console/banks/known/disable",
        data={"csrf": csrf(c)},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert r.status_code == 403 and core(api).banks.get("known").enabled


def test_bank_switch_and_bad_bank_names(api: Api) -> None:
    """(SQLite and PostgreSQL.)"""
    c = api.client
    with_bank(api)
    sign_in(c, api.keys["curator"])
    token = csrf(c)
    r = c.post("/console/banks/known/disable", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and not core(api).banks.get("known").enabled
    assert c.post("/console/banks/known/enable", data={"csrf": token}).status_code == 200
    assert core(api).banks.get("known").enabled
    for name in ("nope", "x" * 300, "..", "%00"):
        r = c.post(f"/console/banks/{name}/disable", data={"csrf": token})
        assert 400 <= r.status_code < 500, (name, r.status_code)
    entries = core(api).audit.entries(20, "known")
    assert [e.actor for e in entries if e.action == "bank.update"][:2] == ["key:curator"] * 2


def test_entry_search(api: Api) -> None:
    """(SQLite and PostgreSQL.)"""
    c = api.client
    with_bank(api)
    sign_in(c, api.keys["curator"])
    entry_id = core(api).banks.entry_ids("known", [("md5", MD5)])["md5"]
    for q in (str(entry_id), "src-7", MD5, MD5.upper()):
        page = c.get("/console/entries", params={"q": q})
        assert page.status_code == 200 and MD5 in page.text, q
    for q in ("nothing", "9" * 40, "'; drop table banks; --", "9" * 30):
        page = c.get("/console/entries", params={"q": q})
        assert page.status_code == 200 and 'id="no-entries"' in page.text, q
    for q in ("x" * 1001, "\x00", "a\nb"):
        assert c.get("/console/entries", params={"q": q}).status_code == 400, q


def test_overview_counts_queue_exposure_and_finds(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    with_bank(api)
    amparo = core(api)
    content = MatchedContent(
        sha256="a" * 64,
        matches=(Match("known", 1, "md5", 0, category="A1"),),
        source=Source(account_id="acct"),
        at=datetime.now(UTC),
    )
    case_id = amparo.cases.open_or_extend(content, rule="r")
    item = amparo.cases.get(case_id).items[0].id
    now = datetime.now(UTC)
    # Recorded as a reveal would be (the item has no preserved copy to show here).
    amparo.cases.reveal_store.reveal(item, "rita", now, since=now, actor="key:rita")
    sign_in(c, api.keys["curator"])
    page = c.get("/console").text
    assert re.search(r'id="queue-waiting">1<', page)
    assert re.search(
        r"<th scope=\"row\">rita</th>(<td class=\"num\">0</td>)*<td class=\"num\">1</td>", page
    )
    assert 'id="reviewed-0"' in page and "known" in page
    assert 'id="no-exchanges"' in page


def test_overview_shows_exchanges(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    with_bank(api)
    lists = api.settings.home / "lists"
    lists.mkdir(parents=True, exist_ok=True)
    listing = lists / "list.txt"
    listing.write_text(MD5 + "\n", encoding="utf-8")
    core(api).exchanges.add(
        Collaboration(
            name="partner-list",
            exchange="file",
            bank="known",
            settings={"path": str(listing), "signal_type": "md5"},
        ),
        actor="test",
    )
    sign_in(c, api.keys["curator"])
    table = re.search(r'<table id="exchange-table">(.*?)</table>', c.get("/console").text, re.S)
    assert table is not None
    assert "partner-list" in table.group(1) and "file" in table.group(1)


def test_rules_bad_input(api: Api) -> None:
    """(SQLite and PostgreSQL.)"""
    c = api.client
    sign_in(c, api.keys["curator"])
    token = csrf(c)
    good = {
        "csrf": token,
        "name": "to-review",
        "actions": "review",
        "priority": "10",
        "enabled": "yes",
    }
    r = c.post("/console/rules", data=good, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/rules/to-review?saved=1"
    bad_forms = [
        {"name": ""},
        {"name": "bad name!"},
        {"name": "to-review"},  # exists
        {"name": "n2", "actions": ""},
        {"name": "n3", "actions": "explode"},
        {"name": "n4", "priority": "high"},
        {"name": "n5", "priority": str(10**12)},
        {"name": "n6", "max_distance": "999"},
        {"name": "n7", "actions": "webhook:"},
        {"name": "n8", "source_kinds": "nowhere"},
        {"name": "n9", "actions": "review:now"},
    ]
    for change in bad_forms:
        r = c.post("/console/rules", data={**good, **change})
        assert 400 <= r.status_code < 500, (change, r.status_code)
        assert 'id="form-error"' in r.text, change
    for path, status in (
        ("/console/rules/nope", 404),
        ("/console/rules/" + "x" * 300, 400),
        ("/console/rules/%00", 400),
    ):
        assert c.get(path).status_code == status, path
        assert c.post(path, data=good).status_code == status, path
        assert c.post(path + "/disable", data={"csrf": token}).status_code == status, path
    r = c.post("/console/rules", data={**good, "name": "n10", "description": "a\x00b"})
    assert r.status_code == 400 and "NUL" in r.text
    r = c.post("/console/rules/to-review/test", data={"csrf": token, "bank": "", "distance": "x"})
    assert r.status_code == 400
    r = c.post(
        "/console/rules/to-review/test",
        data={"csrf": token, "bank": "known", "source_kind": "elsewhere"},
    )
    assert r.status_code == 400
    r = c.post("/console/rules/to-review/test", data={"csrf": token, "bank": "known"})
    assert r.status_code == 200 and "would act" in r.text


def test_rule_edit_disable_and_trail(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    sign_in(c, api.keys["admin"])
    token = csrf(c)
    form = {"csrf": token, "name": "r1", "actions": "review", "enabled": "yes"}
    assert c.post("/console/rules", data=form).status_code == 200
    edit = {**form, "banks": "known, other", "max_distance": "20", "source_kinds": "scan"}
    assert c.post("/console/rules/r1", data=edit).status_code == 200
    rule = core(api).actions.get_rule("r1")
    assert rule.version == 2 and rule.conditions.banks == ("known", "other")
    assert rule.conditions.max_distance == 20 and rule.conditions.source_kinds == ("scan",)
    c.post("/console/rules/r1/disable", data={"csrf": token})
    assert not core(api).actions.get_rule("r1").enabled
    page = c.get("/console/rules/r1").text
    assert page.count("rule.") >= 3 and 'id="trail"' in page


def test_rules_on_how_a_match_was_found(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    sign_in(c, api.keys["curator"])
    token = csrf(c)
    form = {"csrf": token, "name": "r2", "actions": "review", "enabled": "yes"}
    new_page = c.get("/console/rules").text
    assert all(f'id="path-{p}"' in new_page for p in ("plain", "trimmed", "variant", "dihedral"))
    data = {**form, "paths": ["dihedral", "variant"]}
    assert c.post("/console/rules", data=data).status_code == 200
    assert core(api).actions.get_rule("r2").conditions.paths == ("dihedral", "variant")
    page = c.get("/console/rules/r2").text
    assert re.search(r'id="path-dihedral" checked', page)
    assert not re.search(r'id="path-plain" checked', page)
    # Nothing ticked: any way again.
    assert c.post("/console/rules/r2", data=form).status_code == 200
    assert core(api).actions.get_rule("r2").conditions.paths is None
    r = c.post("/console/rules", data={**form, "name": "r3", "paths": "sideways"})
    assert r.status_code == 400 and 'id="form-error"' in r.text and "sideways" in r.text
    # Try it: a match found mirrored, and one found plainly.
    c.post("/console/rules/r2", data={**form, "paths": "dihedral"})
    tried = {"csrf": token, "bank": "known", "source_kind": "api"}
    r = c.post("/console/rules/r2/test", data={**tried, "path": "dihedral"})
    assert r.status_code == 200 and "would act" in r.text
    r = c.post("/console/rules/r2/test", data={**tried, "path": "plain"})
    assert r.status_code == 200 and "would not act" in r.text
    r = c.post("/console/rules/r2/test", data={**tried, "path": "rotated"})
    assert r.status_code == 400 and "rotated" in r.text


def test_webhooks_bad_input_and_test(api: Api) -> None:
    """(SQLite and PostgreSQL.)"""
    c = api.client
    sign_in(c, api.keys["curator"])
    token = csrf(c)
    for form in (
        {"name": "", "url": "https://example.org/hook"},
        {"name": "w", "url": "ftp://example.org"},
        {"name": "w", "url": "not a url"},
        {"name": "bad name!", "url": "https://example.org/hook"},
    ):
        r = c.post("/console/webhooks", data={"csrf": token, **form})
        assert 400 <= r.status_code < 500, (form, r.status_code)
    form = {"csrf": token, "name": "platform", "url": "https://127.0.0.1:9/hook", "enabled": "yes"}
    # A loopback address: refused by the service's URL policy, never connected to.
    r = c.post("/console/webhooks", data=form)
    assert r.status_code == 400 and "refused" in r.text
    # A name that does not resolve now is accepted (checked again at every delivery).
    r = c.post("/console/webhooks", data={**form, "url": "https://hooks.example.invalid/x"})
    assert r.status_code == 201 and 'id="secret"' in r.text
    r = c.post("/console/webhooks/platform/test", data={"csrf": token})
    assert r.status_code == 200 and "Test event not delivered" in r.text
    r = c.post("/console/webhooks/platform", data={"csrf": token, "url": "x"})
    assert r.status_code == 400 and 'id="form-error"' in r.text
    r = c.post("/console/webhooks/platform/disable", data={"csrf": token})
    assert r.status_code == 200 and not core(api).actions.outbox.get_endpoint("platform").enabled
    actions = [e.action for e in core(api).audit.entries(10, "webhook:platform")]
    assert {"webhook.add", "webhook.test", "webhook.update"} <= set(actions)
    assert "webhook.test" in c.get("/console/webhooks/platform").text
    for path, status in (("/console/webhooks/nope", 404), ("/console/webhooks/" + "y" * 300, 400)):
        assert c.get(path).status_code == status
        assert c.post(path + "/test", data={"csrf": token}).status_code == status
        form = {"csrf": token, "url": "https://example.org"}
        assert c.post(path, data=form).status_code == status


def test_the_console_speaks_spanish_and_portuguese(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    with_bank(api)
    page = c.get("/console/signin", headers={"Accept-Language": "es-MX,es;q=0.9"})
    assert '<html lang="es">' in page.text and "Iniciar sesión en la consola" in page.text
    sign_in(c, api.keys["curator"])
    page = c.get("/console", params={"lang": "pt_BR"})
    assert '<html lang="pt-BR">' in page.text and "Console de curadoria" in page.text
    assert "Fila de revisão" in page.text and "Sair" in page.text
    # Remembered for the following pages.
    assert "Regras de ação" in c.get("/console/rules").text


def _console_messages() -> set[str]:
    web = SRC / "web"
    files = [*sorted(web.glob("templates/console_*.html")), *sorted(web.glob("console*.py"))]
    found: set[str] = set()
    for path in files:
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r'_\("([^"]*)"\)', text))
        found |= set(re.findall(r"_\('([^']*)'\)", text))
    console = (web / "console.py").read_text(encoding="utf-8")
    refusals = set(re.findall(r'^(?:REFUSED|EXPIRED|UNKNOWN) = "([^"]+)"', console, re.M))
    assert len(refusals) == 3
    return found | refusals


@pytest.mark.parametrize("language", ["es", "pt_BR"])
def test_the_catalogues_translate_every_console_message(language: str) -> None:
    messages = _console_messages()
    assert len(messages) > 100
    path = SRC / "locale" / language / "LC_MESSAGES" / "console.po"
    with path.open("rb") as handle:
        catalogue = read_po(handle, locale=language, domain="console")
    translated = {str(m.id): str(m.string) for m in catalogue if m.id and not m.fuzzy}
    assert sorted(m for m in messages if not translated.get(m, "").strip()) == []
    for message in messages:
        wanted = sorted(re.findall(r"\{\w+\}", message))
        assert sorted(re.findall(r"\{\w+\}", translated[message])) == wanted, message
