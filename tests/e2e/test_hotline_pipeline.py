"""The hotline pipeline end to end, on loopback: a URL reported in Spanish on ``/report``, the
page crawled and its media verified against a bank, the unknown one preserved for an analyst
(blurred) who classifies it, the host attributed from .mmdb files the test builds and a fake
RDAP service, a Spanish notice delivered to a real SMTP server, the repeat on a fake clock, the
site taking the images down, the re-check confirming removal with the right time, and the same
image re-posted reopening the report.

Every image is benign (scikit-image's sample photos).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from skimage import data

from amparo.api import create_app
from amparo.app import Amparo
from amparo.banks.model import BankInfo
from amparo.config import Settings
from clocks import ManualClock
from hotline_support import FakeRdap, Site, SmtpSink, build_mmdb, hotline_on

HOST = "sitio.example"


def _jpeg(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


KNOWN_A = _jpeg(data.astronaut())
KNOWN_B = _jpeg(data.coffee())
UNKNOWN = _jpeg(data.chelsea())


@pytest.fixture
def world(sqlite_settings: Settings, tmp_path: Path) -> Iterator[dict[str, object]]:
    with Site() as site, FakeRdap("abuse@ejemplo.mx") as rdap, SmtpSink() as smtp:
        asn = build_mmdb(
            tmp_path / "asn.mmdb",
            "GeoLite2-ASN",
            {
                "127.0.0.0/8": {
                    "autonomous_system_number": 64500,
                    "autonomous_system_organization": "Ejemplo Hospedaje SA de CV",
                }
            },
        )
        country = build_mmdb(
            tmp_path / "country.mmdb",
            "GeoLite2-Country",
            {"127.0.0.0/8": {"country": {"iso_code": "MX"}}},
        )
        settings = replace(
            sqlite_settings,
            url_allowlist="127.0.0.1",
            hotline_in_serve=False,
            exchange_in_serve=False,
            hotline_mmdb_files=f"{asn},{country}",
            hotline_rdap_url=rdap.url,
            hotline_countries="MX",
            smtp_url=smtp.url,
            notice_from="avisos@linea.example",
            hotline_name="Línea de denuncia de prueba",
        )
        clock = ManualClock()
        amparo = Amparo(settings)
        # The web site is "sitio.example", which this test's resolver puts on loopback.
        amparo.hotline = hotline_on(amparo, clock, lambda host, port: ["127.0.0.1"], linked=True)
        amparo.banks.create(BankInfo(name="conocido"))
        amparo.banks.add_media("conocido", KNOWN_A, category="benign-test")
        amparo.banks.add_media("conocido", KNOWN_B, category="benign-test")
        site.page(
            "/galeria",
            """<html><head><meta property="og:image" content="/img/a.jpg">
            <title>galería</title></head><body>
            <img src="/img/a.jpg"><picture><source srcset="/r/b 2x"></picture>
            <img src="/img/c.jpg"><img src="/img/roto.jpg"><p>unclosed <div><span>
            </body>""",
        )
        site.media("/img/a.jpg", KNOWN_A, "image/jpeg")
        site.redirect("/r/b", "/img/b.jpg")
        site.media("/img/b.jpg", KNOWN_B, "image/jpeg")
        site.media("/img/c.jpg", UNKNOWN, "image/jpeg")
        with TestClient(create_app(settings, amparo=amparo)) as client:
            yield {
                "amparo": amparo,
                "client": client,
                "site": site,
                "smtp": smtp,
                "clock": clock,
            }
        amparo.close()


def test_a_reported_url_from_report_to_removal_and_back(world: dict[str, object]) -> None:
    amparo: Amparo = world["amparo"]  # type: ignore[assignment]
    client: TestClient = world["client"]  # type: ignore[assignment]
    site: Site = world["site"]  # type: ignore[assignment]
    smtp: SmtpSink = world["smtp"]  # type: ignore[assignment]
    clock: ManualClock = world["clock"]  # type: ignore[assignment]
    hotline = amparo.hotline
    url = f"http://{HOST}:{site.port}/galeria"

    # 1. Reported in Spanish on the public page (no account).
    form = client.get("/report", headers={"Accept-Language": "es-MX,es;q=0.9"})
    assert form.status_code == 200 and 'lang="es"' in form.text
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    sent = client.post(
        "/report", data={"csrf": token.group(1), "lang": "es", "url": url, "comment": "visto"}
    )
    assert sent.status_code == 200
    [report] = hotline.records.list()
    assert report.status == "new" and report.language == "es"

    # 2. The scheduler crawls, verifies, attributes and notices.
    done = hotline.runner.run_once()
    assert done.failed == {}, done.failed  # type: ignore[attr-defined]
    report = hotline.records.get(report.id)
    items = {i.media_url.rsplit("/", 1)[-1]: i for i in hotline.records.items(report.id)}
    assert items["a.jpg"].status == "verified" and items["a.jpg"].matches
    verified = [i for i in items.values() if i.status == "verified"]
    assert len(verified) == 2  # a.jpg and b.jpg (through its redirect), not the broken link
    unknown = [i for i in items.values() if i.status == "unknown"]
    assert len(unknown) == 1 and unknown[0].evidence_id is not None
    assert report.attribution is not None
    assert report.attribution.country == "MX" and report.attribution.asn == 64500
    assert report.attribution.abuse_email == "abuse@ejemplo.mx"
    assert {d["type"] for d in report.attribution.databases} == {
        "GeoLite2-ASN",
        "GeoLite2-Country",
    }
    assert report.status == "notified" and report.first_notice_at == clock.now
    first_notice = clock.now

    # 3. The notice arrived, in Spanish, naming URLs and hashes, carrying no media.
    assert len(smtp.messages) == 1
    notice = smtp.messages[0]
    assert notice["To"] == "abuse@ejemplo.mx"
    text = _text(notice)
    assert items["a.jpg"].sha256 in text and url in text
    assert "Línea de denuncia de prueba" in text and "ha confirmado material" in text
    assert not any(part.get_filename() for part in notice.walk())

    # 4. The analyst sees the unknown medium blurred and classifies it.
    shown = hotline.assessments.media(unknown[0].id, "analista")
    pixels = np.asarray(Image.open(io.BytesIO(shown.data)).convert("RGB")).astype(int)
    assert np.abs(pixels[..., 0] - pixels[..., 1]).max() <= 2  # greyscale
    assessed = hotline.assessments.assess(
        unknown[0].id, "national", jurisdiction="MX", actor="key:analista"
    )
    assert assessed.confirmed

    # 5. Still up a day later: the notice is repeated.
    clock.advance(24 * 3600 + 60)
    hotline.runner.run_once()
    assert len(smtp.messages) == 2
    assert hotline.records.get(report.id).notices_sent == 2

    # 6. The site takes the images down; the next re-check confirms the removal.
    for path in ("/img/a.jpg", "/img/b.jpg", "/img/c.jpg"):
        site.gone(path)
    due = hotline.records.get(report.id).next_recheck_at
    assert due is not None
    clock.now = max(clock.now, due) + timedelta(seconds=1)
    hotline.runner.run_once()
    report = hotline.records.get(report.id)
    assert report.status == "removed" and report.removed_at == clock.now
    assert report.time_to_removal_seconds == (clock.now - first_notice).total_seconds()
    assert all(not i.online for i in hotline.records.items(report.id) if i.confirmed)

    # 7. The same image re-posted: the watch re-check reopens the report and it counts.
    site.media("/img/a.jpg", KNOWN_A, "image/jpeg")
    watch = hotline.records.get(report.id).next_recheck_at
    assert watch is not None
    clock.now = watch + timedelta(seconds=1)
    hotline.runner.run_once()
    reopened = hotline.records.get(report.id)
    assert reopened.reappearances == 1 and reopened.status in ("confirmed", "notified")
    hotline.runner.run_once()
    assert hotline.records.get(report.id).status == "notified"
    assert len(smtp.messages) == 3

    # The figures a hotline publishes count it, and the audit log holds every step.
    figures = hotline.figures.figures()
    assert figures.overall.removed == 0 and figures.overall.reappearances == 1
    actions = {e.action for e in amparo.audit.entries(500)}
    for action in ("hotline.report", "hotline.crawl", "hotline.attribute", "hotline.notice"):
        assert action in actions
    assert {"hotline.assess", "hotline.removed", "hotline.reopen"} <= actions


def _text(message: object) -> str:
    from email.message import Message

    assert isinstance(message, Message)
    parts = []
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            parts.append(payload.decode(part.get_content_charset() or "utf-8"))
    return "\n".join(parts)
