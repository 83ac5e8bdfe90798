"""The reviewer pages under /review (sign-in, queue, case, confirmation, disabled entries,
errors) speak Spanish, Brazilian Portuguese and English: the language comes from ``?lang``
(remembered in a cookie), else ``Accept-Language``, else English; every message of their
templates has a translation in both catalogues of the ``review`` domain."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from test_api_support import QUIET, Api, sqlite_api

from amparo.app import Amparo
from amparo.events import MatchedContent, Source
from amparo.matching import Match
from amparo.web.pages import DECISION_LABELS, SHORTCUTS, STATUS_LABELS

__all__ = ["sqlite_api"]
pytestmark = QUIET

SRC = Path(__file__).resolve().parents[2] / "src" / "amparo"
PAGES = ("base", "signin", "queue", "case", "confirm", "entries", "error")
SPANISH = {"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"}
NAV_ENGLISH = ("Queue", "Hotline", "Disabled entries", "Revealed today", "Sign out", "review<")


def core(api: Api) -> Amparo:
    amparo: Amparo = api.client.app.state.service.amparo  # type: ignore[attr-defined]
    return amparo


def open_case(api: Api, n: int) -> int:
    content = MatchedContent(
        sha256=f"{n:064x}",
        matches=(Match("known", n, "pdq", 8, category="A2"),),
        source=Source(account_id="acct-1", file_name=f"upload-{n}.jpg"),
        md5=f"{n:032x}",
        size=2048,
        media_kind="photo",
        at=datetime.now(UTC),
    )
    return core(api).cases.open_or_extend(content, evidence_id=n, rule="test-rule")


def sign_in(client: TestClient, key: str) -> str:
    page = client.get("/review/signin")
    pre = re.search(r'name="pre" value="([^"]+)"', page.text)
    assert pre is not None
    r = client.post(
        "/review/signin", data={"key": key, "pre": pre.group(1)}, follow_redirects=False
    )
    return r.headers.get("location", "")


def header(html: str) -> str:
    found = re.search(r'<header class="bar">(.*?)</header>', html, re.S)
    assert found is not None
    return found.group(1)


def csrf_of(html: str) -> str:
    found = re.search(r'data-csrf="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_sign_in_page_speaks_the_browsers_language_or_the_chosen_one(sqlite_api: Api) -> None:
    c = sqlite_api.client
    english = c.get("/review/signin", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in english.text and "Sign in to review" in english.text
    assert english.headers["content-language"] == "en"
    plain = c.get("/review/signin")  # no Accept-Language at all: English
    assert "Sign in to review" in plain.text

    spanish = c.get("/review/signin", headers=SPANISH)
    assert spanish.status_code == 200 and spanish.headers["content-language"] == "es"
    assert '<html lang="es">' in spanish.text
    assert "Inicie sesión para revisar" in spanish.text and "Clave de API" in spanish.text
    # The scope names stay code, inside the translated sentence.
    assert "con el ámbito <code>reviewer</code> (curadores: <code>curator</code>)" in spanish.text
    assert "Sign in" not in spanish.text
    # The form is the same in every language.
    for needle in ('id="key" name="key"', 'id="signin"', 'name="pre"'):
        assert needle in spanish.text

    portuguese = c.get("/review/signin?lang=pt_BR", headers=SPANISH)
    assert '<html lang="pt-BR">' in portuguese.text and "Entre para revisar" in portuguese.text
    assert "amparo_lang=pt_BR" in portuguese.headers["set-cookie"]
    # A refused sign-in: the message in the language chosen (remembered) before.
    refused = c.post(
        "/review/signin", data={"key": "amp_nope", "pre": "x"}, headers={"Accept-Language": "es"}
    )
    assert refused.status_code == 401 and '<html lang="pt-BR">' in refused.text
    assert "O formulário de entrada expirou. Tente novamente." in refused.text
    # The answer to a POST offers no switcher (its address cannot be opened again).
    assert 'class="languages"' not in refused.text


def test_queue_and_case_in_spanish(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    case_id = open_case(api, 7)
    assert sign_in(c, api.keys["reviewer"]) == "/review/queue"

    queue = c.get("/review/queue", headers=SPANISH)
    assert queue.status_code == 200 and '<html lang="es">' in queue.text
    assert "Cola de revisión" in queue.text and "en espera" in queue.text
    bar = header(queue.text)
    assert "Cola" in bar and "Línea de denuncia" in bar and "Cerrar sesión" in bar
    assert "Revelados hoy:" in bar
    assert [word for word in NAV_ENGLISH if word in bar] == []
    # Filters keep their values in the address; only the label is translated.
    assert 'href="/review/queue?status=escalated"' in queue.text and ">escalado<" in queue.text
    assert f'href="/review/cases/{case_id}"' in queue.text

    page = c.get(f"/review/cases/{case_id}", headers=SPANISH)
    html = page.text
    assert page.status_code == 200 and f"Caso #{case_id}" in html
    assert "Confirmar A1" in html and "Falso positivo" in html and "Escalar" in html
    assert "Entradas coincidentes" in html and "Anotaciones (separadas por comas" in html
    assert "Revelar durante" in html and "Atajos de teclado" in html
    # The shortcuts, translated at render.
    assert "falso positivo (pide confirmación" in html and "mostrar u ocultar" in html
    assert [word for word in NAV_ENGLISH if word in header(html)] == []
    # What the script and the tests rely on is untouched.
    item_id = core(api).cases.get(case_id).items[0].id
    for needle in (
        'id="decide"',
        'name="choice" value="false_positive" data-key="f" class="fp"',
        f'data-reveal-url="/review/items/{item_id}/reveal"',
        'id="reveal" data-action="reveal"',
        'id="exposure-count"',
        'id="exposure-left"',
        'id="note" name="note"',
        f'data-item="{item_id}">elemento #{item_id}</a>',
    ):
        assert needle in html, needle

    # "f" asks first: the confirmation, and the undo offer after it, in Spanish too.
    asked = c.post(
        f"/review/items/{item_id}/decision",
        data={"choice": "false_positive", "csrf": csrf_of(html)},
        headers=SPANISH,
    )
    assert asked.status_code == 200 and 'id="confirm-fp"' in asked.text
    assert f"¿Marcar el elemento #{item_id} del caso #{case_id} como falso positivo?" in asked.text
    assert "minutos" in asked.text and "minutes" not in asked.text
    done = c.post(
        f"/review/items/{item_id}/decision",
        data={"choice": "false_positive", "confirmed": "yes", "csrf": csrf_of(html)},
        headers=SPANISH,
    )
    offered = done  # followed to the next page, which offers to undo
    assert 'id="undo-offer"' in offered.text
    assert "después se descarta la copia preservada" in offered.text
    assert "<b>falso positivo</b>" in offered.text


def test_portuguese_chosen_once_is_remembered(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    case_id = open_case(api, 8)
    sign_in(c, api.keys["reviewer"])
    chosen = c.get("/review/queue?lang=pt_BR", headers=SPANISH)
    assert '<html lang="pt-BR">' in chosen.text and "Fila de revisão" in chosen.text
    assert chosen.headers["content-language"] == "pt-BR"
    bar = header(chosen.text)
    assert "Fila" in bar and "Canal de denúncias" in bar and "Sair" in bar
    assert [word for word in NAV_ENGLISH if word in bar] == []
    # The switcher: each language's link keeps the page and its other parameters.
    assert 'aria-label="Idioma"' in bar and 'aria-current="true">Português (Brasil)</a>' in bar
    later = c.get(f"/review/cases/{case_id}?item=1", headers=SPANISH)
    assert "Entradas correspondentes" in later.text and "Confirmar A1" in later.text
    assert f'href="/review/cases/{case_id}?item=1&amp;lang=es"' in later.text
    assert f'href="/review/cases/{case_id}?item=1&amp;lang=en"' in later.text
    # English chosen explicitly wins over the cookie and the browser.
    english = c.get("/review/queue?lang=en", headers=SPANISH)
    assert "Review queue" in english.text and "Sign out" in english.text
    # The hotline pages share the choice.
    assert "Canal de denúncias: itens" in c.get("/review/hotline?lang=pt_BR").text
    assert "Fila de revisão" in c.get("/review/queue").text


def test_curator_and_error_pages(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    sign_in(c, api.keys["curator"])
    entries = c.get("/review/entries?lang=pt_BR")
    assert "Entradas desativadas após falsos positivos" in entries.text
    assert "(<code>review_fp_disable_after</code>)" in entries.text
    assert "Nenhuma entrada aguarda exame." in entries.text
    refused = c.get("/review/queue", headers={"Accept-Language": "pt-BR"})
    assert refused.status_code == 403 and "Isso não funcionou" in refused.text
    assert "Voltar à revisão" in refused.text


def test_english_stays_the_default(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    case_id = open_case(api, 9)
    sign_in(c, api.keys["reviewer"])
    page = c.get(f"/review/cases/{case_id}", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in page.text and "Matched entries" in page.text
    assert "Confirm A1" in page.text and "false positive (asks to confirm" in page.text
    assert "Sign out" in header(page.text)
    assert "Review queue" in c.get("/review/queue", headers={"Accept-Language": "fr, de"}).text


def _messages() -> set[str]:
    found: set[str] = set()
    files = [SRC / "web" / "templates" / f"{name}.html" for name in PAGES]
    files.append(SRC / "web" / "pages.py")
    for path in files:
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r'_\("([^"]*)"\)', text))
        found |= set(re.findall(r"_\('([^']*)'\)", text))
    found |= {what for _, what in SHORTCUTS}
    found |= set(STATUS_LABELS.values()) | set(DECISION_LABELS.values())
    # The sign-in page's two refusals (amparo.web.signin), translated in signin.html.
    signin = (SRC / "web" / "signin.py").read_text(encoding="utf-8")
    refusals = set(re.findall(r'error = \(?\s*"([^"]+)"', signin))
    assert len(refusals) == 2
    return found | refusals


@pytest.mark.parametrize("language", ["es", "pt_BR"])
def test_the_catalogues_translate_every_reviewer_page_message(language: str) -> None:
    messages = _messages()
    assert len(messages) > 90
    path = SRC / "locale" / language / "LC_MESSAGES" / "review.po"
    with path.open("rb") as handle:
        catalogue = read_po(handle, locale=language, domain="review")
    translated = {str(m.id): str(m.string) for m in catalogue if m.id and not m.fuzzy}
    assert sorted(m for m in messages if not translated.get(m, "").strip()) == []
    # Placeholders survive translation.
    for message in messages:
        wanted = sorted(re.findall(r"\{\w+\}", message))
        assert sorted(re.findall(r"\{\w+\}", translated[message])) == wanted, message


def test_a_page_of_another_domain_keeps_its_text_and_gets_the_header_translated(
    sqlite_api: Api,
) -> None:
    api, c = sqlite_api, sqlite_api.client
    sign_in(c, api.keys["reviewer"])
    stats = c.get("/review/hotline/stats", headers=SPANISH)
    assert stats.status_code == 200 and '<html lang="es">' in stats.text
    bar = header(stats.text)
    assert "Cerrar sesión" in bar and [word for word in NAV_ENGLISH if word in bar] == []


def test_the_case_page_says_how_each_match_was_found(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    content = MatchedContent(
        sha256=f"{77:064x}",
        matches=(
            Match("known", 1, "pdq", 4, category="A2", path="trimmed"),
            Match("known", 2, "pdq", 5, category="A2", path="variant", variant="crop5-left"),
            Match("known", 3, "pdq", 6, category="A2", transform="flipx", path="dihedral"),
            Match("known", 4, "md5", 0, category="A2"),
        ),
        source=Source(account_id="acct-1", file_name="upload-77.jpg"),
        media_kind="photo",
        at=datetime.now(UTC),
    )
    case_id = core(api).cases.open_or_extend(content, evidence_id=None, rule="test-rule")
    sign_in(c, api.keys["reviewer"])
    cells = re.findall(r'<td class="path">([^<]*)</td>', c.get(f"/review/cases/{case_id}").text)
    assert sorted(cells) == sorted(
        ["borders trimmed", "a stored crop (crop5-left)", "mirrored or rotated (flipx)", "as is"]
    )
    spanish = c.get(f"/review/cases/{case_id}", headers=SPANISH).text
    assert "recorte guardado (crop5-left)" in spanish and "reflejada o girada (flipx)" in spanish
    item = c.get(
        f"/v1/cases/{case_id}", headers={"Authorization": f"Bearer {api.keys['reviewer']}"}
    )
    paths = sorted(m["path"] for m in item.json()["items"][0]["matches"])
    assert paths == ["dihedral", "plain", "trimmed", "variant"]
