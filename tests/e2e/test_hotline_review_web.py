"""The analysts' hotline pages at /review/hotline in-process: the queue lists unknown items,
an item's page shows its medium only shielded (blurred, greyscale) and its URLs as text, an
assessment needs the page's CSRF token, and the pages speak Spanish and Portuguese.

Media is a benign scikit-image sample photo standing in for preserved evidence."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from PIL import Image
from test_api_support import QUIET, Api, photo, sqlite_api

from amparo.app import Amparo
from amparo.clock import utc_now
from amparo.hotline.model import HotlineItem
from amparo.i18n import translations
from hotline_support import unknown_item

__all__ = ["sqlite_api"]
pytestmark = QUIET

PHOTO = photo("coffee")  # colourful and detailed: blurring and greyscale are easy to measure
MEDIA_URL = "https://host.example/gallery/picture-1.jpg"
SRC = Path(__file__).resolve().parents[2] / "src" / "amparo"


def core(api: Api) -> Amparo:
    amparo: Amparo = api.client.app.state.service.amparo  # type: ignore[attr-defined]
    return amparo


def waiting_item(api: Api) -> HotlineItem:
    amparo = core(api)
    records = amparo.hotline.records
    url = "https://host.example/gallery"
    report, _ = records.submit(
        url, "host.example/gallery", "host.example", at=utc_now(), channel="web"
    )
    records.update(report.id, at=utc_now(), status="assessment")
    return unknown_item(amparo, report.id, PHOTO, media_url=MEDIA_URL, mime="image/jpeg")


def sign_in(client: TestClient, key: str) -> str:
    page = client.get("/review/signin")
    pre = re.search(r'name="pre" value="([^"]+)"', page.text)
    assert pre is not None
    r = client.post(
        "/review/signin", data={"key": key, "pre": pre.group(1)}, follow_redirects=False
    )
    return r.headers.get("location", "")


def csrf_of(html: str) -> str:
    found = re.search(r'data-csrf="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)


def detail(rgb: np.ndarray) -> float:
    """Mean absolute difference of neighbouring pixels: high when sharp, near 0 when blurred."""
    grey = rgb.mean(axis=2)
    return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())


def test_queue_item_page_shielded_media_and_assessment(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    item = waiting_item(api)
    # Signed out: nothing, not even the shielded picture.
    assert c.get("/review/hotline", follow_redirects=False).headers["location"] == "/review/signin"
    assert c.get(f"/review/hotline/items/{item.id}/media").status_code == 401
    assert sign_in(c, api.keys["reviewer"]) == "/review/queue"

    queue = c.get("/review/hotline")
    assert queue.status_code == 200
    assert f'href="/review/hotline/items/{item.id}"' in queue.text
    assert "Waiting: 1" in queue.text and MEDIA_URL in queue.text
    assert "unsafe-inline" not in queue.headers["content-security-policy"]
    assert queue.headers["cache-control"] == "no-store"

    page = c.get(f"/review/hotline/items/{item.id}")
    assert page.status_code == 200
    html = page.text
    assert item.sha256 in html and "https://host.example/gallery" in html
    # The URLs are text, never something the browser loads or follows.
    assert MEDIA_URL in html
    assert f'src="{MEDIA_URL}"' not in html and f'href="{MEDIA_URL}"' not in html
    assert f'src="/review/hotline/items/{item.id}/media"' in html
    assert 'class="shielded"' in html and 'name="jurisdiction"' in html
    assert '<option value="MX"' in html

    media = c.get(f"/review/hotline/items/{item.id}/media")
    assert media.status_code == 200 and media.headers["content-type"] == "image/jpeg"
    assert media.headers["cache-control"] == "no-store"
    assert media.content != PHOTO
    shown, original = pixels(media.content), pixels(PHOTO)
    assert np.abs(shown[..., 0] - shown[..., 1]).max() <= 2  # greyscale
    assert np.abs(shown[..., 1] - shown[..., 2]).max() <= 2
    assert detail(shown) < detail(original) / 4  # blurred
    # The clear rendition only after a deliberate reveal (CSRF-checked, logged, counted).
    assert c.get(f"/review/hotline/items/{item.id}/media?clear=1").status_code == 403
    reveal_url = f"/review/hotline/items/{item.id}/reveal"
    assert c.post(reveal_url).status_code == 403
    revealed = c.post(reveal_url, headers={"X-CSRF-Token": csrf_of(html)})
    assert revealed.status_code == 200 and revealed.json()["revealed_today"] == 1
    clear = c.get(revealed.json()["src"])
    assert clear.status_code == 200 and clear.content != media.content
    assert 'data-reveal-url="/review/hotline/items/' in html
    assert any(e.action == "hotline.reveal" for e in core(api).audit.entries(50))
    assert any(
        e.action == "evidence.read" and e.actor == "key:reviewer"
        for e in core(api).audit.entries(50)
    )

    url = f"/review/hotline/items/{item.id}/assess"
    form = {"assessment": "national", "jurisdiction": "MX", "note": "clear case"}
    refused = c.post(url, data=form, follow_redirects=False)
    assert refused.status_code == 403
    assert core(api).hotline.records.item(item.id).status == "unknown"
    forged = c.post(url, data={**form, "csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    unknown = c.post(
        url, data={**form, "jurisdiction": "ZZ", "csrf": csrf_of(html)}, follow_redirects=False
    )
    assert unknown.status_code == 400 and "not a known jurisdiction" in unknown.text

    done = c.post(url, data={**form, "csrf": csrf_of(html)}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/review/hotline?assessed={item.id}"
    assessed = core(api).hotline.records.item(item.id)
    assert (assessed.status, assessed.assessment, assessed.jurisdiction) == (
        "assessed",
        "national",
        "MX",
    )
    assert assessed.assessed_by == "key:reviewer" and assessed.note == "clear case"
    assert core(api).hotline.records.get(item.report_id).status == "confirmed"
    after = c.get(done.headers["location"])
    assert "Waiting: 0" in after.text and f"Item #{item.id} assessed." in after.text
    again = c.get(f"/review/hotline/items/{item.id}")
    assert "Código Penal Federal, arts. 202, 202 bis" in again.text


def test_only_reviewers_open_the_hotline_pages(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    item = waiting_item(api)
    assert sign_in(c, api.keys["curator"]) == "/review/entries"
    assert c.get("/review/hotline").status_code == 403
    assert c.get(f"/review/hotline/items/{item.id}").status_code == 403
    assert c.get(f"/review/hotline/items/{item.id}/media").status_code == 401


def test_spanish_and_portuguese_pages(sqlite_api: Api) -> None:
    api, c = sqlite_api, sqlite_api.client
    item = waiting_item(api)
    sign_in(c, api.keys["reviewer"])
    spanish = c.get("/review/hotline", headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    assert '<html lang="es">' in spanish.text
    assert "Línea de denuncia: elementos a la espera de un analista" in spanish.text
    assert "En espera: 1" in spanish.text
    assert spanish.headers["content-language"] == "es"
    page = c.get(f"/review/hotline/items/{item.id}", headers={"Accept-Language": "es"})
    assert "Registrar la evaluación" in page.text and "No ilegal" in page.text
    assert "México (MX)" in page.text
    # An explicit choice wins over the browser's and is remembered.
    chosen = c.get("/review/hotline?lang=pt_BR", headers={"Accept-Language": "es"})
    assert "Canal de denúncias: itens aguardando um analista" in chosen.text
    assert '<html lang="pt-BR">' in chosen.text
    later = c.get(f"/review/hotline/items/{item.id}", headers={"Accept-Language": "es"})
    assert "Registrar a avaliação" in later.text and "Não ilegal" in later.text


def _messages() -> set[str]:
    found: set[str] = set()
    templates = SRC / "web" / "templates"
    # The stats page speaks its own domain ("stats"); these pages the "review" one.
    files = [templates / "hotline_queue.html", templates / "hotline_item.html"]
    files.append(SRC / "web" / "hotline.py")
    for path in files:
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r'_\("([^"]*)"\)', text))
        found |= set(re.findall(r"_\('([^']*)'\)", text))
    return found


@pytest.mark.parametrize("language", ["es", "pt_BR"])
def test_the_catalogues_translate_every_message(language: str) -> None:
    messages = _messages()
    assert len(messages) > 30
    path = SRC / "locale" / language / "LC_MESSAGES" / "review.po"
    with path.open("rb") as handle:
        catalogue = read_po(handle, locale=language, domain="review")
    translated = {str(m.id) for m in catalogue if m.id and m.string and not m.fuzzy}
    assert sorted(messages - translated) == []
    # The catalogue is the one the pages read.
    assert translations(language, "review").gettext("Not illegal") != "Not illegal"
