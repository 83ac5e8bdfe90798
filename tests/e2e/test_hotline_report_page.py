"""The public report page and the partners' report API, in-process: the page speaks the
reporter's language (Accept-Language, ``?lang=``, then remembered), refuses a POST without
its form token or from another site, records a report and thanks, tells a flooding client to
wait (429), explains refusals (a private address, a bad URL) in the reporter's language; and
``/v1/url-reports`` takes reports from ``reporter`` keys only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_api_support import QUIET

import amparo.web
from amparo.api import create_app
from amparo.app import Amparo
from amparo.config import Settings
from amparo.i18n import translator
from amparo.keys import KeyService

pytestmark = QUIET

LIMIT = 3


@dataclass
class Page:
    client: TestClient
    keys: dict[str, str]

    @property
    def amparo(self) -> Amparo:
        amparo: Amparo = self.client.app.state.service.amparo  # type: ignore[attr-defined]
        return amparo

    def form(self, path: str = "/report", **headers: str) -> tuple[str, str]:
        """The page's HTML and its form token."""
        response = self.client.get(path, headers=headers)
        assert response.status_code == 200
        token = re.search(r'name="csrf" value="([^"]+)"', response.text)
        assert token is not None
        return response.text, token.group(1)

    def send(self, lang: str = "es", **fields: str) -> tuple[int, str]:
        _, token = self.form(f"/report?lang={lang}")
        response = self.client.post("/report", data={"csrf": token, "lang": lang, **fields})
        return response.status_code, response.text

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture
def page(sqlite_settings: Settings) -> Iterator[Page]:
    settings = replace(sqlite_settings, report_rate_limit=f"{LIMIT}/600", hotline_in_serve=False)
    with Amparo(settings) as amparo:
        service = KeyService(amparo.store)
        keys = {s: service.create(s, [s], actor="test").secret for s in ("reporter", "matcher")}
        keys["admin"] = service.create("boss", ["admin"], actor="test").secret
        keys["other"] = service.create("other-hotline", ["reporter"], actor="test").secret
    with TestClient(create_app(settings)) as client:
        yield Page(client, keys)


def test_the_page_speaks_spanish_from_accept_language(page: Page) -> None:
    response = page.client.get("/report", headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    html = response.text
    assert response.status_code == 200
    assert '<html lang="es">' in html
    assert "Denunciar una página web con material de abuso sexual infantil" in html
    assert "NO suba ni envíe imágenes o videos" in html
    assert "coincidencia de hashes" in html and "confidenciales" in html
    # Never asks for material: no file field, no multipart form.
    assert 'type="file"' not in html and "multipart" not in html
    assert 'for="url"' in html and 'id="url"' in html
    for code in ("es", "pt_BR", "en"):
        assert f'href="/report?lang={code}"' in html
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    cookie = response.headers["set-cookie"].lower()
    assert "amparo_report_form=" in cookie
    assert "path=/report" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "max-age=1800" in cookie


def test_lang_parameter_wins_and_is_remembered(page: Page) -> None:
    response = page.client.get("/report?lang=pt_BR", headers={"Accept-Language": "es"})
    assert '<html lang="pt-BR">' in response.text
    assert "Denunciar uma página da web com material de abuso sexual infantil" in response.text
    assert 'id="lang-pt_BR" aria-current="true"' in response.text
    assert "amparo_lang=pt_BR" in response.headers["set-cookie"]
    again = page.client.get("/report", headers={"Accept-Language": "es"})
    assert '<html lang="pt-BR">' in again.text
    english = page.client.get("/report?lang=en")
    assert '<html lang="en">' in english.text and "Report a web page" in english.text
    assert page.client.get("/report?lang=xx").status_code == 200  # unknown: negotiated


def test_a_post_without_the_form_token_is_refused(page: Page) -> None:
    bare = page.client.post("/report", data={"url": "https://example.com/", "lang": "es"})
    assert bare.status_code == 403
    assert "El formulario caducó" in bare.text
    _, token = page.form()
    wrong = page.client.post("/report", data={"csrf": token + "x", "url": "https://example.com/"})
    assert wrong.status_code == 403
    cross = page.client.post(
        "/report",
        data={"csrf": token, "url": "https://example.com/"},
        headers={"Origin": "https://elsewhere.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403
    assert page.amparo.hotline.records.count() == 0


def test_a_file_sent_to_the_page_is_not_read(page: Page) -> None:
    _, token = page.form()
    response = page.client.post(
        "/report",
        data={"csrf": token, "url": "https://example.com/"},
        files={"photo": ("x.jpg", b"\xff\xd8\xff" + bytes(64), "image/jpeg")},
    )
    assert response.status_code == 415
    assert page.amparo.hotline.records.count() == 0


def test_a_report_is_recorded_and_thanked(page: Page) -> None:
    status, html = page.send(
        "pt_BR",
        url="ejemplo.mx/galeria?utm_source=x",
        contact="denunciante@example.com",
        comment="no topo da página",
    )
    assert status == 200
    assert "Obrigado. Recebemos a sua denúncia." in html
    (report,) = page.amparo.hotline.records.list()
    assert report.url == "http://ejemplo.mx/galeria" and report.language == "pt_BR"
    (sub,) = page.amparo.hotline.records.submissions(report.id)
    assert (sub.channel, sub.reporter, sub.contact) == ("web", None, "denunciante@example.com")
    (entry,) = page.amparo.audit.entries(action="hotline.report")
    assert entry.actor == "public" and "denunciante" not in str(entry.details)
    # The token was used up: the same form cannot be replayed.
    replay = page.client.post("/report", data={"csrf": "x", "url": "https://example.com/"})
    assert replay.status_code == 403


def test_bad_input_re_renders_the_form_with_the_reason(page: Page) -> None:
    status, html = page.send("es", url="http://192.168.0.10/fotos")
    assert status == 400
    assert "esta dirección está en una red privada o local" in html
    assert 'value="http://192.168.0.10/fotos"' in html  # kept for correcting
    status, html = page.send("es", url='"><script>alert(1)</script>')
    assert status == 400 and "esto no parece una dirección web" in html
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    status, html = page.send("en", url="https://example.com/", comment="x" * 2001)
    assert status == 400 and "the comment is too long" in html
    status, html = page.send("pt_BR", url="https://example.com/" + "a" * 3000)
    assert status == 400 and "a URL é longa demais" in html
    assert "Traceback" not in html
    assert page.amparo.hotline.records.count() == 0


def test_a_flooding_client_is_told_to_wait(page: Page) -> None:
    for n in range(LIMIT):
        status, _ = page.send("es", url=f"https://example.com/{n}")
        assert status == 200
    _, token = page.form("/report?lang=es")
    response = page.client.post(
        "/report", data={"csrf": token, "lang": "es", "url": "https://example.com/more"}
    )
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert "Envió varias denuncias en poco tiempo" in response.text
    assert "Espere 10 minutos" in response.text
    assert page.amparo.hotline.records.count() == LIMIT


def test_every_text_of_the_page_is_translated() -> None:
    web = Path(amparo.web.__file__).parent
    sources = [web / "report.py", *sorted((web / "templates").glob("report*.html"))]
    texts = {
        text
        for source in sources
        for text in re.findall(r"""_\((?:"([^"]+)"|'([^']+)')\)""", source.read_text())
        for text in text
        if text
    }
    assert len(texts) > 30
    for lang in ("es", "pt_BR"):
        _ = translator(lang, "report")
        missing = sorted(t for t in texts if _(t) == t)
        assert not missing, (lang, missing)
        assert _("Please wait %(minutes)s minutes and try again.") % {"minutes": 2}


def test_the_stylesheet_is_served(page: Page) -> None:
    response = page.client.get("/report/static/report.css")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/css")


# -- the API for partner hotlines and platforms -----------------------------------------------


def test_a_reporter_key_reports_and_reads_back(page: Page) -> None:
    body = {"url": "HTTPS://Example.com/a#x", "language": "es", "comment": "from a platform"}
    created = page.client.post("/v1/url-reports", json=body, headers=page.auth("reporter"))
    assert created.status_code == 201, created.text
    data = created.json()
    assert data == {
        "id": data["id"],
        "url": "https://example.com/a",
        "status": "new",
        "joined": False,
    }
    joined = page.client.post(
        "/v1/url-reports", json={"url": "https://example.com/a"}, headers=page.auth("other")
    )
    assert joined.status_code == 201 and joined.json()["joined"] is True
    shown = page.client.get(f"/v1/url-reports/{data['id']}", headers=page.auth("reporter"))
    assert shown.status_code == 200
    assert set(shown.json()) == {"id", "url", "status", "created_at", "submissions"}
    assert shown.json()["submissions"] == 2
    (first, _) = page.amparo.hotline.records.submissions(data["id"])
    assert (first.channel, first.reporter, first.language) == ("api", "reporter", "es")
    (entry, *_) = page.amparo.audit.entries(action="hotline.report")
    assert entry.actor == "key:other-hotline"
    admin = page.client.get(f"/v1/url-reports/{data['id']}", headers=page.auth("admin"))
    assert admin.status_code == 200


def test_a_reporter_reads_only_its_own_reports(page: Page) -> None:
    created = page.client.post(
        "/v1/url-reports", json={"url": "https://example.com/mine"}, headers=page.auth("reporter")
    ).json()
    other = page.client.get(f"/v1/url-reports/{created['id']}", headers=page.auth("other"))
    missing = page.client.get("/v1/url-reports/999999", headers=page.auth("other"))
    assert other.status_code == missing.status_code == 404
    assert other.json()["error"] == missing.json()["error"]


def test_other_scopes_may_not_report(page: Page) -> None:
    body = {"url": "https://example.com/"}
    assert (
        page.client.post("/v1/url-reports", json=body, headers=page.auth("matcher")).status_code
        == 403
    )
    assert page.client.post("/v1/url-reports", json=body).status_code == 401
    assert page.client.get("/v1/url-reports/1", headers=page.auth("matcher")).status_code == 403
    assert page.amparo.hotline.records.count() == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"url": "http://127.0.0.1/"}, 400, "url_refused"),
        ({"url": "ftp://example.com/"}, 400, "url_refused"),
        ({"url": "http://user:pw@example.com/"}, 400, "url_refused"),
        ({"url": "https://example.com/", "contact": "not a contact"}, 400, "invalid_input"),
        ({"url": "https://example.com/", "comment": "x\x00y"}, 400, "invalid_input"),
    ],
)
def test_bad_reports_are_4xx_json(page: Page, body: dict[str, str], status: int, code: str) -> None:
    response = page.client.post("/v1/url-reports", json=body, headers=page.auth("reporter"))
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["hint"]


@pytest.mark.parametrize(
    "body", [{}, {"url": ""}, {"url": "https://example.com/", "file": "x"}, {"url": 7}]
)
def test_malformed_bodies_are_refused(page: Page, body: dict[str, object]) -> None:
    response = page.client.post("/v1/url-reports", json=body, headers=page.auth("reporter"))
    assert 400 <= response.status_code < 500
    assert page.amparo.hotline.records.count() == 0
