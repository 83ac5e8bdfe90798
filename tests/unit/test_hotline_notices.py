"""Notices and forwards without storage: their text in each language (URLs and hashes, never
media), the language a host country gets, the signed export a partner checks, and SMTP to a
real server on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_file

import amparo.hotline.notices as notices_module
from amparo.config import Settings, load_settings
from amparo.errors import ConfigError, CredentialsError, FeedVerificationError, InputError
from amparo.exchanges.signing import FeedSigner
from amparo.hotline.delivery import SmtpServer, build_email, send_email
from amparo.hotline.model import Attribution, HotlineItem, UrlReport
from amparo.hotline.notices import forward_export, render_notice, sign_forward, verify_forward
from amparo.hotline.partners import (
    Partner,
    WebhookRoutes,
    load_partners,
    notice_language,
    partner_for,
)
from amparo.i18n import translator
from hotline_support import SmtpSink, free_port

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SHA = "a3" * 32
MD5 = "5d" * 16
PDQ = "f0" * 32


def report(country: str = "MX", *, cdn: bool = False) -> UrlReport:
    return UrlReport(
        id=42,
        url="https://files.example.mx/gallery?id=9",
        host="files.example.mx",
        status="confirmed",
        created_at=AT,
        updated_at=AT,
        attribution=Attribution(
            host="files.example.mx",
            asn=64500,
            country=country,
            abuse_email="abuse@host.example",
            cdn=cdn,
        ),
    )


def item(**values: Any) -> HotlineItem:
    fields: dict[str, Any] = {
        "id": 1,
        "report_id": 42,
        "media_url": "https://files.example.mx/i/9.jpg",
        "sha256": SHA,
        "status": "verified",
        "first_seen": AT,
        "last_seen": AT,
        "md5": MD5,
        "pdq": PDQ,
        "assessment": "baseline",
    }
    fields.update(values)
    return HotlineItem(**fields)


def render(language: str, **kw: Any) -> notices_module.Rendered:
    target = kw.pop("report", report())
    values: dict[str, Any] = {
        "kind": "notice",
        "language": language,
        "hotline": "Te Protejo",
        "reply_to": "desk@hotline.example",
    }
    values.update(kw)
    return render_notice(target, [item()], **values)


@pytest.mark.parametrize(
    ("country", "preferred", "language"),
    [
        ("MX", None, "es"),
        ("GT", None, "es"),
        ("AR", None, "es"),
        ("co", None, "es"),
        ("BR", None, "pt_BR"),
        ("PT", None, "pt_BR"),
        ("US", None, "en"),
        (None, None, "en"),
        ("US", "pt-BR", "pt_BR"),
        ("MX", "xx", "es"),
    ],
)
def test_notice_language_follows_the_hosting_country(
    country: str | None, preferred: str | None, language: str
) -> None:
    assert notice_language(country, preferred) == language


def test_spanish_notice_names_urls_hashes_basis_and_what_is_asked() -> None:
    rendered = render("es")
    assert rendered.subject.startswith("[Te Protejo] Aviso:")
    for text in (rendered.text, rendered.html):
        for fact in ("https://files.example.mx/gallery?id=9", "files.example.mx/i/9.jpg"):
            assert fact in text
        assert SHA in text and MD5 in text and PDQ in text
        assert "desk@hotline.example" in text
    assert "ilegal a nivel internacional (criterio base de INTERPOL)" in rendered.text
    assert "retirar el contenido" in rendered.text
    assert "conservar los datos" in rendered.text
    assert "Reporte: 42" in rendered.text
    assert "2026-03-01 12:00 UTC" in rendered.text
    assert "URGENTE" not in rendered.text
    assert "<img" not in rendered.html and "data:" not in rendered.html
    assert rendered.payload["items"][0] == {
        "media_url": "https://files.example.mx/i/9.jpg",
        "sha256": SHA,
        "md5": MD5,
        "pdq": PDQ,
        "classification": "baseline",
        "jurisdiction": None,
        "first_seen": AT.isoformat(),
    }
    assert rendered.payload["asked"] == ["remove_or_disable", "preserve_data", "reply"]


def test_escalation_is_urgent_with_its_number_and_national_basis() -> None:
    rendered = render_notice(
        report("BR"),
        [item(assessment="national", jurisdiction="br", status="assessed")],
        kind="escalation",
        language="pt_BR",
        hotline="H",
        reply_to="desk@h.example",
        number=5,
    )
    assert rendered.subject.startswith("URGENTE [H] Notificação reiterada nº 5")
    assert "após 4 notificações" in rendered.text
    assert "ilegal segundo a lei de BR" in rendered.text
    assert rendered.payload["urgent"] is True and rendered.payload["number"] == 5


def test_cdn_notice_asks_for_the_origin_host() -> None:
    assert "origin host" in render("en", report=report("US", cdn=True)).text
    assert "servidor de origen" in render("es", report=report(cdn=True)).text
    assert "origin host" not in render("en", report=report("US")).text


def test_every_notice_message_is_translated() -> None:
    source = Path(notices_module.__file__)
    messages = [m for _, m, _, _ in extract_from_file("python", str(source), keywords={"_": None})]
    assert len(messages) > 15
    for language in ("es", "pt_BR"):
        _ = translator(language, "notices")
        untranslated = [m for m in messages if isinstance(m, str) and _(m) == m]
        assert untranslated in ([], ["Item {n}: {url}"]), (language, untranslated)
        for message in messages:
            assert isinstance(message, str)
            # Every placeholder of the English text survives the translation.
            assert sorted(_placeholders(_(message))) == sorted(_placeholders(message)), message


def _placeholders(text: str) -> list[str]:
    import string

    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


# -- files --------------------------------------------------------------------------------


def settings_with(tmp_path: Path, **overrides: Any) -> Settings:
    return load_settings(env={}, overrides={"home": tmp_path / "home", **overrides})


def test_partners_and_countries(tmp_path: Path) -> None:
    path = tmp_path / "partners.json"
    path.write_text(
        json.dumps({"br": {"name": "SaferNet", "email": "d@safernet.example", "language": "pt_BR"}})
    )
    partners = load_partners(settings_with(tmp_path, hotline_partners_file=str(path)))
    assert partners == {
        "BR": Partner("BR", "SaferNet", "d@safernet.example", None, "pt_BR"),
    }
    mx = frozenset({"MX"})
    assert partner_for("BR", mx, partners) == partners["BR"]
    assert partner_for("MX", mx, partners) is None  # notified here
    assert partner_for("AR", mx, partners) is None  # no partner: notify the host
    assert partner_for("BR", frozenset(), partners) is None  # empty: notify every host
    path.write_text(json.dumps({"BR": {"name": "nobody to send to"}}))
    with pytest.raises(ConfigError, match="no email, url or public key"):
        load_partners(settings_with(tmp_path, hotline_partners_file=str(path)))
    with pytest.raises(ConfigError, match="does not exist"):
        load_partners(settings_with(tmp_path, hotline_partners_file=str(tmp_path / "none")))


def test_webhook_routes_by_domain_then_network(tmp_path: Path) -> None:
    path = tmp_path / "hooks.json"
    path.write_text(
        json.dumps(
            {"asn": {"64500": "https://net.example/h"}, "domain": {"example.mx": "https://d/h"}}
        )
    )
    routes = WebhookRoutes.from_settings(settings_with(tmp_path, notice_webhooks_file=str(path)))
    attribution = report().attribution
    assert routes.url_for("files.example.mx", attribution) == "https://d/h"
    assert routes.url_for("other.example", attribution) == "https://net.example/h"
    assert routes.url_for("other.example", None) is None
    assert routes.url_for("notexample.mx", None) is None


# -- the signed export --------------------------------------------------------------------


def signed_export(tmp_path: Path) -> tuple[dict[str, Any], FeedSigner]:
    signer = FeedSigner(tmp_path / "feed.key")
    partner = Partner("BR", "SaferNet", "d@safernet.example", None, "pt_BR")
    export = forward_export(
        report("BR"),
        [item()],
        organisation="org-mx",
        hotline="Te Protejo",
        reply_to="desk@hotline.example",
        partner=partner,
        at=AT,
    )
    return sign_forward(export, signer), signer


def test_forward_verifies_with_the_public_key_and_not_once_altered(tmp_path: Path) -> None:
    signed, signer = signed_export(tmp_path)
    text = json.dumps(signed, indent=2)
    export = verify_forward(text, signer.public_pem())
    assert export["report"]["url"] == "https://files.example.mx/gallery?id=9"
    assert export["items"][0]["sha256"] == SHA
    assert export["attribution"]["country"] == "BR"
    assert export["from"]["organisation"] == "org-mx"
    assert signed["key_id"] == signer.key_id
    assert verify_forward(signed, signer.public_key) == export

    tampered = json.loads(text)
    tampered["export"]["items"][0]["sha256"] = "00" * 32
    with pytest.raises(FeedVerificationError, match="does not verify"):
        verify_forward(tampered, signer.public_pem())
    other = FeedSigner(tmp_path / "other.key")
    with pytest.raises(FeedVerificationError):
        verify_forward(signed, other.public_pem())
    with pytest.raises(InputError, match="not a forwarded report"):
        verify_forward({"hello": 1}, signer.public_pem())
    with pytest.raises(InputError, match="not JSON"):
        verify_forward(b"\xff", signer.public_pem())


# -- SMTP ---------------------------------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


def test_an_email_notice_reaches_the_server_without_attachments(smtp: SmtpSink) -> None:
    server = SmtpServer("127.0.0.1", smtp.port, False, 5.0)
    message = build_email(
        render("es"),
        sender="avisos@hotline.example",
        to="abuse@host.example",
        reply_to="desk@hotline.example",
        at=AT,
    )
    delivery = send_email(server, message)
    assert delivery.ok, delivery.error
    assert delivery.answer["message_id"] == message["Message-ID"]
    (received,) = smtp.messages
    assert smtp.envelopes[0].rcpt_tos == ["abuse@host.example"]
    assert received["Reply-To"] == "desk@hotline.example"
    assert received["Message-ID"].endswith("@hotline.example>")
    assert received["Date"] and received["Content-Language"] == "es"
    assert list(received.iter_attachments()) == []
    assert all(
        not part.get_content_type().startswith(("image/", "video/")) for part in received.walk()
    )
    body = received.get_body(("plain",))
    assert body is not None and SHA in body.get_content()


def test_a_server_that_is_down_is_a_clear_failure() -> None:
    server = SmtpServer("127.0.0.1", free_port(), False, 2.0)
    message = build_email(
        render("en"), sender="a@b.example", to="c@d.example", reply_to="a@b.example", at=AT
    )
    delivery = send_email(server, message)
    assert not delivery.ok
    assert delivery.error is not None
    assert "cannot send through the SMTP server 127.0.0.1" in delivery.error
    assert "ConnectionRefusedError" in delivery.error


def test_smtp_settings_and_credentials_by_reference(tmp_path: Path) -> None:
    s = settings_with(
        tmp_path,
        smtp_url="smtps://mail.example",
        smtp_username="notices",
        smtp_password="env:AMPARO_SECRET_SMTP",
    )
    server = SmtpServer.from_settings(s, environ={"AMPARO_SECRET_SMTP": "s3cret"})
    assert (server.host, server.port, server.implicit_tls) == ("mail.example", 465, True)
    assert (server.username, server.password) == ("notices", "s3cret")
    assert "s3cret" not in repr(server)
    secrets = tmp_path / "home" / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "smtp.json").write_text('{"user": "u1", "password": "p1"}')
    ref = f"file:{secrets / 'smtp.json'}"
    s = settings_with(
        tmp_path, smtp_url="smtp://mail.example:587", smtp_username=ref, smtp_password=ref
    )
    server = SmtpServer.from_settings(s, environ={})
    assert (server.port, server.implicit_tls, server.username, server.password) == (
        587,
        False,
        "u1",
        "p1",
    )
    with pytest.raises(InputError, match="invalid credentials reference"):
        SmtpServer.from_settings(settings_with(tmp_path, smtp_password="hunter2"))
    with pytest.raises(CredentialsError, match="AMPARO_SECRET_NONE"):
        SmtpServer.from_settings(
            settings_with(tmp_path, smtp_password="env:AMPARO_SECRET_NONE"), environ={}
        )
    with pytest.raises(ConfigError, match="smtp_url"):
        SmtpServer.from_settings(settings_with(tmp_path, smtp_url="http://mail.example"))
