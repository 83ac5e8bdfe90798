"""Notices until removal, and forwards, end to end over a real SMTP server and a real webhook
receiver on loopback, on each database: what is due when (a moved clock, never sleeps), what
arrives, and what is recorded when sending fails."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from amparo.api import create_app
from amparo.app import Amparo
from amparo.config import load_settings
from amparo.errors import ConflictError, FeedVerificationError, PermissionDeniedError
from amparo.exchanges.signing import verify
from amparo.hotline.context import HotlineContext
from amparo.hotline.model import Attribution
from amparo.hotline.notices import verify_forward
from amparo.keys import KeyService
from clocks import ManualClock
from hotline_support import SmtpSink, hotline_on

SHA = "b7" * 32
MD5 = "1c" * 16
PDQ = "9e" * 32
HOUR = 3600.0


class Receiver:
    """A webhook receiver on loopback that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        bodies, headers = self.bodies, self.headers

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                bodies.append(json.loads(self.rfile.read(length)))
                headers.append(dict(self.headers.items()))
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


class Hotline:
    """An installation whose hotline runs on a clock the test moves."""

    def __init__(self, tmp_path: Path, database_url: str, **overrides: Any) -> None:
        settings = load_settings(
            env={},
            overrides={
                "home": tmp_path / "home",
                "database_url": database_url,
                "hotline_name": "Te Protejo",
                "notice_from": "avisos@hotline.example",
                "notice_reply_to": "desk@hotline.example",
                "smtp_timeout_seconds": 5.0,
                "webhook_timeout_seconds": 5.0,
                "url_allowlist": "127.0.0.1",
                "hotline_in_serve": False,  # the test runs every pass itself
                **overrides,
            },
        )
        self.app = Amparo(settings)
        self.clock = ManualClock()
        self.service = hotline_on(self.app, self.clock, linked=True)
        self.ctx: HotlineContext = self.service.context
        self.notifier = self.service.notifier

    def confirmed(
        self,
        url: str = "https://files.example.mx/album/9",
        *,
        country: str = "MX",
        abuse_email: str | None = "abuse@host.example",
        cdn: bool = False,
        attributed: bool = True,
    ) -> int:
        now = self.clock()
        records = self.ctx.records
        host = url.split("/")[2]
        report, _ = records.submit(url, url, host, at=now, channel="api")
        records.add_item(
            report.id,
            media_url=f"https://{host}/i/9.jpg",
            sha256=SHA,
            md5=MD5,
            pdq=PDQ,
            status="verified",
            assessment="baseline",
            at=now,
        )
        attribution = Attribution(
            host=host,
            addresses=("192.0.2.7",),
            asn=64500,
            provider="Example Hosting",
            country=country,
            abuse_email=abuse_email,
            abuse_source="rdap" if abuse_email else None,
            cdn=cdn,
            resolved_at=now,
        )
        records.update(
            report.id,
            at=now,
            status="confirmed",
            attribution=attribution if attributed else None,
        )
        return report.id

    def close(self) -> None:
        self.app.close()


@pytest.fixture
def make(tmp_path: Path, database_url: str) -> Iterator[Any]:
    made: list[Hotline] = []

    def build(**overrides: Any) -> Hotline:
        # database_url="" in overrides: an installation of its own (SQLite in its home).
        url = overrides.pop("database_url", database_url)
        hotline = Hotline(tmp_path / str(len(made)), url, **overrides)
        made.append(hotline)
        return hotline

    yield build
    for hotline in made:
        hotline.close()


def test_a_spanish_notice_for_mx_content_arrives_with_urls_and_hashes(
    make: Any, smtp: SmtpSink
) -> None:
    h = make(smtp_url=f"smtp://127.0.0.1:{smtp.port}")
    report_id = h.confirmed()
    assert h.notifier.notify_due() == 1

    (message,) = smtp.messages
    assert smtp.envelopes[0].rcpt_tos == ["abuse@host.example"]
    assert message["From"] == "avisos@hotline.example"
    assert message["Reply-To"] == "desk@hotline.example"
    assert message["Message-ID"] and message["Date"]
    assert message["Subject"].startswith("[Te Protejo] Aviso:")
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    for fact in ("https://files.example.mx/album/9", "https://files.example.mx/i/9.jpg"):
        assert fact in text
    assert SHA in text and MD5 in text and PDQ in text
    assert "criterio base de INTERPOL" in text and f"Reporte: {report_id}" in text
    assert list(message.iter_attachments()) == []
    assert all(not p.get_content_type().startswith(("image/", "video/")) for p in message.walk())

    report = h.ctx.records.get(report_id)
    now = h.clock()
    assert report.status == "notified"
    assert report.notices_sent == 1
    assert report.first_notice_at == now == report.last_notice_at
    assert report.next_notice_at == now + timedelta(hours=24)
    assert report.next_recheck_at == now + timedelta(hours=6)
    (notice,) = h.ctx.records.notices(report_id)
    assert (notice.kind, notice.channel, notice.recipient, notice.language, notice.ok) == (
        "notice",
        "email",
        "abuse@host.example",
        "es",
        True,
    )
    assert notice.detail["message_id"] == message["Message-ID"]
    assert notice.detail["hashes"] == [{"sha256": SHA, "md5": MD5, "pdq": PDQ}]
    (entry,) = h.app.audit.entries(5, f"url-report:{report_id}", action="hotline.notice")
    assert entry.details["ok"] is True and entry.details["notices"] == [notice.id]


def test_repeats_after_the_interval_and_not_before_then_escalates(
    make: Any, smtp: SmtpSink
) -> None:
    h = make(
        smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        notice_repeat_hours=24.0,
        notice_escalate_after=2,
        notice_escalation_email="police@liaison.example",
    )
    report_id = h.confirmed()
    assert h.notifier.notify_due() == 1
    h.clock.advance(23 * HOUR)
    assert h.notifier.notify_due() == 0
    assert len(smtp.envelopes) == 1
    h.clock.advance(1 * HOUR)
    assert h.notifier.notify_due() == 1  # repeat 1 (notice 2)
    h.clock.advance(24 * HOUR)
    assert h.notifier.notify_due() == 1  # repeat 2 (notice 3)
    report = h.ctx.records.get(report_id)
    assert not report.escalated
    h.clock.advance(24 * HOUR)
    assert h.notifier.notify_due() == 1  # after 2 repeats: escalation, copied to the liaison

    kinds = [(n.kind, n.recipient) for n in h.ctx.records.notices(report_id)]
    assert kinds == [
        ("notice", "abuse@host.example"),
        ("repeat", "abuse@host.example"),
        ("repeat", "abuse@host.example"),
        ("escalation", "abuse@host.example"),
        ("escalation", "police@liaison.example"),
    ]
    subjects = [m["Subject"] for m in smtp.messages]
    assert subjects[1].startswith("[Te Protejo] Aviso reiterado n.º 2")
    assert subjects[3].startswith("URGENTE [Te Protejo] Aviso reiterado n.º 4")
    assert [e.rcpt_tos for e in smtp.envelopes[3:]] == [
        ["abuse@host.example"],
        ["police@liaison.example"],
    ]
    report = h.ctx.records.get(report_id)
    assert report.escalated and report.notices_sent == 4
    assert report.first_notice_at is not None and report.first_notice_at < report.last_notice_at  # type: ignore[operator]


def test_forward_to_the_partner_of_a_country_outside_the_hotlines(
    make: Any, smtp: SmtpSink, tmp_path: Path
) -> None:
    partners = tmp_path / "partners.json"
    partners.write_text(
        json.dumps(
            {
                "BR": {
                    "name": "SaferNet Brasil",
                    "email": "denuncias@safernet.example",
                    "language": "pt_BR",
                }
            }
        )
    )
    h = make(
        smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        hotline_countries="MX",
        hotline_partners_file=str(partners),
    )
    report_id = h.confirmed("https://cdn.example.br/x/1", country="BR")
    mx_report = h.confirmed("https://files.example.mx/album/9", country="MX")
    ar_report = h.confirmed("https://files.example.ar/a", country="AR")  # no partner
    assert h.notifier.notify_due() == 3

    by_rcpt = {e.rcpt_tos[0]: m for e, m in zip(smtp.envelopes, smtp.messages, strict=True)}
    assert set(by_rcpt) == {"denuncias@safernet.example", "abuse@host.example"}
    assert len(smtp.envelopes) == 3  # the MX and AR hosts are noticed directly
    message = by_rcpt["denuncias@safernet.example"]
    assert message["Subject"].startswith(f"[Te Protejo] Denúncia encaminhada {report_id}")
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == f"report-{report_id}.json"
    assert attachment.get_content_type() == "application/json"
    data = attachment.get_content()
    export = verify_forward(data, h.app.feeds.signer.public_pem())
    assert export["report"]["url"] == "https://cdn.example.br/x/1"
    assert export["items"][0]["sha256"] == SHA and export["items"][0]["pdq"] == PDQ
    assert export["attribution"]["country"] == "BR"
    assert export["from"]["organisation"] == h.app.feeds.organisation
    assert export["to"] == {"country": "BR", "name": "SaferNet Brasil"}
    tampered = json.loads(data)
    tampered["export"]["report"]["url"] = "https://elsewhere.example/"
    with pytest.raises(FeedVerificationError):
        verify_forward(tampered, h.app.feeds.signer.public_pem())

    report = h.ctx.records.get(report_id)
    assert report.status == "forwarded" and report.next_notice_at is None
    (notice,) = h.ctx.records.notices(report_id)
    assert (notice.kind, notice.language, notice.ok) == ("forward", "pt_BR", True)
    assert h.app.audit.entries(5, f"url-report:{report_id}", action="hotline.forward")
    assert h.ctx.records.get(mx_report).status == "notified"
    assert h.ctx.records.get(ar_report).status == "notified"
    # Forwards are sent once.
    h.clock.advance(100 * HOUR)
    assert h.notifier.notify_due() == 2
    assert [n.kind for n in h.ctx.records.notices(report_id)] == ["forward"]
    with pytest.raises(ConflictError, match="forwarded"):
        h.notifier.notify(report_id, actor="analyst")


def test_webhook_channel_and_a_partner_url(make: Any, receiver: Receiver, tmp_path: Path) -> None:
    hooks = tmp_path / "hooks.json"
    hooks.write_text(json.dumps({"domain": {"example.mx": receiver.url}}))
    partners = tmp_path / "partners.json"
    partners.write_text(json.dumps({"BR": {"name": "SaferNet", "url": receiver.url}}))
    h = make(
        notice_from="",  # no email at all: webhooks and partner URLs still go
        notice_webhooks_file=str(hooks),
        hotline_countries="MX",
        hotline_partners_file=str(partners),
    )
    mx = h.confirmed("https://www.example.mx/a")
    br = h.confirmed("https://host.example.br/b", country="BR")
    assert h.notifier.notify_due() == 2

    at = next(i for i, b in enumerate(receiver.bodies) if "type" in b)
    notice_body = receiver.bodies[at]
    signer = h.app.feeds.signer
    assert receiver.headers[at]["X-Amparo-Key-Id"] == signer.key_id
    signature = receiver.headers[at]["X-Amparo-Signature"].removeprefix("ed25519=")
    verify(signer.public_key, notice_body, signature)
    assert notice_body["type"] == "amparo.hotline.notice"
    assert notice_body["kind"] == "notice" and notice_body["language"] == "es"
    assert notice_body["report"]["url"] == "https://www.example.mx/a"
    assert notice_body["items"][0]["sha256"] == SHA
    forward_body = next(b for b in receiver.bodies if "export" in b)
    assert verify_forward(forward_body, h.app.feeds.signer.public_pem())["report"]["id"] == br
    (notice,) = h.ctx.records.notices(mx)
    assert (notice.channel, notice.recipient, notice.ok) == ("webhook", receiver.url, True)
    assert notice.detail["answer"] == {"status": 202}
    (forward,) = h.ctx.records.notices(br)
    assert (forward.kind, forward.channel, forward.ok) == ("forward", "export", True)


def test_no_contact_is_a_failed_notice_retried_later_without_spam(
    make: Any, smtp: SmtpSink
) -> None:
    h = make(smtp_url=f"smtp://127.0.0.1:{smtp.port}")
    report_id = h.confirmed(abuse_email=None)
    assert h.notifier.notify_due() == 1
    (notice,) = h.ctx.records.notices(report_id)
    assert (notice.ok, notice.error, notice.recipient) == (False, "no abuse contact", "")
    report = h.ctx.records.get(report_id)
    assert report.status == "confirmed" and report.notices_sent == 0
    assert report.next_notice_at == h.clock() + timedelta(hours=24)
    assert h.notifier.notify_due() == 0  # not every pass
    assert smtp.envelopes == []
    entry = h.app.audit.entries(5, f"url-report:{report_id}", action="hotline.notice")[0]
    assert entry.details["ok"] is False and entry.details["error"] == "no abuse contact"
    h.clock.advance(24 * HOUR)
    assert h.notifier.notify_due() == 1
    assert len(h.ctx.records.notices(report_id)) == 2


def test_a_malformed_abuse_contact_is_a_failed_notice(make: Any, smtp: SmtpSink) -> None:
    h = make(smtp_url=f"smtp://127.0.0.1:{smtp.port}")
    report_id = h.confirmed(abuse_email="abuse@host.example\nBcc: someone@else.example")
    assert h.notifier.notify_due() == 1
    (notice,) = h.ctx.records.notices(report_id)
    assert not notice.ok and notice.error is not None and "cannot write the email" in notice.error
    assert smtp.envelopes == []
    assert h.ctx.records.get(report_id).status == "confirmed"


def test_smtp_down_is_a_failed_notice_with_a_clear_error_then_sent(make: Any) -> None:
    server = SmtpSink()  # not started: nothing listens on its port
    h = make(smtp_url=f"smtp://127.0.0.1:{server.port}")
    report_id = h.confirmed()
    assert h.notifier.notify_due() == 1
    (failed,) = h.ctx.records.notices(report_id)
    assert not failed.ok
    assert failed.error is not None
    assert f"cannot send through the SMTP server 127.0.0.1:{server.port}" in failed.error
    report = h.ctx.records.get(report_id)
    assert report.status == "confirmed" and report.notices_sent == 0
    assert h.notifier.notify_due() == 0
    server.start()
    try:
        h.clock.advance(1 * HOUR)
        assert h.notifier.notify_due() == 1
    finally:
        server.stop()
    assert len(server.envelopes) == 1
    sent = h.ctx.records.notices(report_id)[-1]
    assert (sent.kind, sent.ok) == ("notice", True)  # still the first notice
    assert h.ctx.records.get(report_id).status == "notified"


def test_without_attribution_or_sender_nothing_is_sent_or_crashes(
    make: Any, smtp: SmtpSink
) -> None:
    h = make(smtp_url=f"smtp://127.0.0.1:{smtp.port}")
    unattributed = h.confirmed(attributed=False)
    assert h.notifier.notify_due() == 0
    with pytest.raises(ConflictError, match="no hosting attribution"):
        h.notifier.notify(unattributed, actor="analyst")

    quiet = make(smtp_url=f"smtp://127.0.0.1:{smtp.port}", notice_from="")
    report_id = quiet.confirmed()
    assert quiet.notifier.notify_due() == 0  # a logged skip
    assert quiet.ctx.records.notices(report_id) == []
    with pytest.raises(ConflictError, match="notice_from"):
        quiet.notifier.notify(report_id, actor="analyst")
    assert smtp.envelopes == []


def test_notify_now_with_force_and_a_held_lease_sends_nothing(make: Any, smtp: SmtpSink) -> None:
    h = make(smtp_url=f"smtp://127.0.0.1:{smtp.port}")
    report_id = h.confirmed()
    (first,) = h.notifier.notify(report_id, actor="analyst")
    assert first.ok and first.kind == "notice"
    with pytest.raises(ConflictError, match="due at"):
        h.notifier.notify(report_id, actor="analyst")
    (again,) = h.notifier.notify(report_id, actor="analyst", force=True)
    assert again.kind == "repeat" and h.ctx.records.get(report_id).notices_sent == 2
    entry = h.app.audit.entries(1, f"url-report:{report_id}", action="hotline.notice")[0]
    assert entry.actor == "analyst"

    # A process that sent and died before recording leaves its lease: no second send.
    h.clock.advance(48 * HOUR)
    assert h.ctx.leases.acquire(f"hotline:notice:{report_id}", "crashed", 24 * HOUR, now=h.clock())
    assert h.notifier.notify_due() == 0
    with pytest.raises(ConflictError, match="being sent"):
        h.notifier.notify(report_id, actor="analyst", force=True)
    assert len(smtp.envelopes) == 2
    h.clock.advance(24 * HOUR)
    assert h.notifier.notify_due() == 1


def test_a_forward_reaches_a_partner_amparo_that_takes_it_in(
    make: Any, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hotline MX forwards a Brazilian-hosted report to its partner's Amparo (its URL, with
    the reporter key the partner gave it); the partner checks the signature against MX's
    public key and reports the URL there. Anything else signed, or altered, is refused."""
    monkeypatch.setenv("AMPARO_SECRET_BR_KEY", "reporter-key-from-br")
    to_br = tmp_path / "to-br.json"
    to_br.write_text(
        json.dumps(
            {"BR": {"name": "SaferNet", "url": receiver.url, "api_key": "env:AMPARO_SECRET_BR_KEY"}}
        )
    )
    mx = make(hotline_countries="MX", hotline_partners_file=str(to_br), notice_from="")
    report_id = mx.confirmed("https://host.example.br/album", country="BR")
    assert mx.notifier.notify_due() == 1
    (body,) = [b for b in receiver.bodies if "export" in b]
    (headers,) = [h for h, b in zip(receiver.headers, receiver.bodies, strict=True) if b is body]
    assert headers["Authorization"] == "Bearer reporter-key-from-br"

    from_mx = tmp_path / "from-mx.json"
    from_mx.write_text(
        json.dumps({"MX": {"name": "Te Protejo", "public_key": mx.app.feeds.public_key()}})
    )
    br = make(database_url="", hotline_partners_file=str(from_mx))
    taken, joined = br.service.intake.receive_forward(body, actor="key:mx-hotline")
    assert not joined and taken.url == "https://host.example.br/album" and taken.status == "new"
    (submission,) = br.ctx.records.submissions(taken.id)
    assert submission.reporter == "forward:MX" and "Te Protejo" in (submission.comment or "")
    received = br.app.audit.entries(5, f"url-report:{taken.id}", action="hotline.forward.receive")
    assert received and received[0].details["sender_report"] == report_id
    (sent_item,) = received[0].details["items"]
    assert sent_item["sha256"] == SHA and sent_item["classification"] == "baseline"

    altered = json.loads(json.dumps(body))
    altered["export"]["report"]["url"] = "https://elsewhere.example/"
    with pytest.raises(PermissionDeniedError):
        br.service.intake.receive_forward(altered, actor="key:mx-hotline")
    elsewhere = make(database_url="", hotline_partners_file=str(from_mx), hotline_countries="AR")
    with pytest.raises(PermissionDeniedError, match="addressed to the hotline of BR"):
        elsewhere.service.intake.receive_forward(body, actor="key:mx-hotline")
    br.clock.advance(31 * 24 * HOUR)  # a replay a month later
    with pytest.raises(PermissionDeniedError, match="outside the 30 days"):
        br.service.intake.receive_forward(body, actor="key:mx-hotline")
    br.clock.advance(-31 * 24 * HOUR)
    stranger = make(database_url="")
    with pytest.raises(PermissionDeniedError, match="partner hotline's key"):
        stranger.service.intake.receive_forward(body, actor="key:someone")

    # Over the partner's API, with the reporter key it gave MX.
    secret = KeyService(br.app.store).create("mx-hotline", ["reporter"], actor="t").secret
    auth = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(br.app.settings, amparo=br.app)) as client:
        sent = client.post("/v1/forwards", json=body, headers=auth)
        assert sent.status_code == 201 and sent.json()["joined"] is True
        refused = client.post("/v1/forwards", json=altered, headers=auth)
        assert refused.status_code == 403 and "hint" in refused.json()["error"]
        assert client.post("/v1/forwards", json={"x": 1}, headers=auth).status_code == 400
