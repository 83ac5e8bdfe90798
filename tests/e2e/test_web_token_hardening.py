"""Tokens that are not ASCII and form fields with control characters, on every page that
checks a form token: each is refused with the page's usual 4xx answer, never a 500.

``hmac.compare_digest`` raises TypeError on a ``str`` that is not ASCII, so a forged token
such as ``é`` once reached the error handler; the console's webhook forms also stored a URL
holding a NUL on SQLite (PostgreSQL refuses it in the driver)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from test_api_support import QUIET, Api, sqlite_api

from amparo.actions import sign, verify_signature
from amparo.api import create_app
from amparo.app import Amparo
from amparo.config import Settings

__all__ = ["sqlite_api"]
pytestmark = QUIET

FORGED = ["é", "\u00e9\u00e9\u00e9", "☃" * 40, "\x00"]


def _hidden(text: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', text)
    assert found is not None
    return found.group(1)


def _console_sign_in(client: TestClient, key: str) -> None:
    pre = _hidden(client.get("/console/signin").text, "pre")
    r = client.post("/console/signin", data={"key": key, "pre": pre}, follow_redirects=False)
    assert r.status_code == 303


@pytest.fixture
def report_client(sqlite_settings: Settings) -> Iterator[TestClient]:
    settings = replace(sqlite_settings, hotline_in_serve=False)
    with Amparo(settings):
        pass
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("token", FORGED)
def test_the_report_page_refuses_a_token_that_is_not_ascii(
    report_client: TestClient, token: str
) -> None:
    # With the form's cookie set (a GET first) and without it.
    r = report_client.post("/report", data={"csrf": token, "url": "https://example.com/"})
    assert r.status_code == 403
    report_client.get("/report")
    r = report_client.post("/report", data={"csrf": token, "url": "https://example.com/"})
    assert r.status_code == 403 and 'name="csrf"' in r.text


def test_the_report_page_refuses_a_cookie_that_is_not_ascii(report_client: TestClient) -> None:
    # Token and cookie equal and not ASCII (the cookie's bytes read back as Latin-1, the form's
    # as UTF-8, so both sides are sent to match): refused by the token's own check.
    token = "é.9999999999.é"
    cookie = f"amparo_report_form={token}".encode()
    for csrf in (token, token.encode().decode("latin-1")):
        r = report_client.post(
            "/report",
            data={"csrf": csrf, "url": "https://example.com/"},
            headers={"Cookie": cookie},
        )
        assert r.status_code == 403


@pytest.mark.parametrize("pre", FORGED)
def test_console_sign_in_refuses_a_form_token_that_is_not_ascii(sqlite_api: Api, pre: str) -> None:
    c = sqlite_api.client
    key = sqlite_api.keys["curator"]
    assert c.post("/console/signin", data={"key": key, "pre": pre}).status_code == 400
    c.get("/console/signin")  # the cookie is set now
    r = c.post("/console/signin", data={"key": key, "pre": pre})
    assert r.status_code == 400 and "expired" in r.text


@pytest.mark.parametrize("pre", FORGED)
def test_review_sign_in_refuses_a_form_token_that_is_not_ascii(sqlite_api: Api, pre: str) -> None:
    c = sqlite_api.client
    c.get("/review/signin")
    r = c.post("/review/signin", data={"key": sqlite_api.keys["reviewer"], "pre": pre})
    assert 400 <= r.status_code < 500 or "expired" in r.text
    assert c.get("/review/queue", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("token", FORGED)
def test_console_posts_refuse_a_csrf_token_that_is_not_ascii(sqlite_api: Api, token: str) -> None:
    c = sqlite_api.client
    _console_sign_in(c, sqlite_api.keys["curator"])
    form = {"name": "r", "csrf": token}
    r = c.post("/console/rules", data=form)
    assert r.status_code == 403 and "security token" in r.text
    raw = token.encode("latin-1", "replace")  # a header's bytes, read back as Latin-1
    r = c.post("/console/rules", data={"name": "r"}, headers={"X-CSRF-Token": raw})
    assert r.status_code == 403 and "security token" in r.text


def test_a_csrf_header_byte_that_is_not_ascii(sqlite_api: Api) -> None:
    c = sqlite_api.client
    _console_sign_in(c, sqlite_api.keys["curator"])
    r = c.post("/console/rules", data={"name": "r"}, headers={"X-CSRF-Token": b"\xe9"})
    assert r.status_code == 403


@pytest.mark.parametrize("bad", ["\x00", "\x01", "\x1b", "\x7f", "\n"])
def test_webhook_forms_refuse_control_characters(sqlite_api: Api, bad: str) -> None:
    c = sqlite_api.client
    _console_sign_in(c, sqlite_api.keys["curator"])
    token = _hidden(c.get("/console").text, "csrf")
    outbox = sqlite_api.client.app.state.service.amparo.actions.outbox  # type: ignore[attr-defined]
    form = {"csrf": token, "name": "hook", "url": f"https://hooks.example.invalid/a{bad}b"}
    r = c.post("/console/webhooks", data=form)
    assert r.status_code == 400 and 'id="form-error"' in r.text
    assert outbox.list_endpoints() == []
    good = {**form, "url": "https://hooks.example.invalid/x", "enabled": "yes"}
    assert c.post("/console/webhooks", data=good).status_code == 201
    r = c.post("/console/webhooks/hook", data={**form, "enabled": "yes"})
    assert r.status_code == 400 and 'id="form-error"' in r.text
    assert outbox.get_endpoint("hook").url == "https://hooks.example.invalid/x"


@pytest.mark.parametrize("header", ["sha256=é", "sha256=" + "\u00e9" * 64, "sha256=\udcff"])
def test_a_webhook_signature_that_is_not_ascii_is_a_mismatch(header: str) -> None:
    assert not verify_signature("s" * 32, b"{}", header)
    assert verify_signature("s" * 32, b"{}", sign("s" * 32, b"{}"))
