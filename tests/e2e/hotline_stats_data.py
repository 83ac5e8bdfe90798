"""URL reports, items and notices written through the hotline repository, for the tests of
the figures' CLI, API, metrics and stats page, and the stand-in answers the CLI and API tests
give for the hotline's parts (holds no tests itself). Hashes name benign
synthetic content; no media is involved."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from amparo.hotline.model import Attribution, Notice, UrlReport
from amparo.store.hotline import HotlineRepository

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SHA = hashlib.sha256(b"benign test content").hexdigest()
PDQ = "f" * 64
ODD_PROVIDER = 'Hoster <B> & "Sons"'


def _attribution(host: str, provider: str, country: str) -> Attribution:
    return Attribution(
        host=host,
        addresses=("192.0.2.10",),
        asn=64500,
        provider=provider,
        country=country,
        abuse_email=f"abuse@{host}",
        abuse_source="rdap",
        resolved_at=T0,
    )


def populate(records: HotlineRepository) -> dict[str, int]:
    """Four reports: two removed (2 h and 50 h after the first notice, MX, Hoster A), one
    still online (BR, a provider whose name needs escaping), one new and unattributed."""
    ids: dict[str, int] = {}

    def submit(name: str, url: str, host: str) -> int:
        report, _joined = records.submit(
            url, url, host, at=T0 - timedelta(hours=1), channel="web", language="es"
        )
        ids[name] = report.id
        return report.id

    fast = submit("fast", "https://a.example/one", "a.example")
    records.update(
        fast,
        at=T0 + timedelta(hours=2),
        status="removed",
        attribution=_attribution("a.example", "Hoster A", "MX"),
        first_notice_at=T0,
        last_notice_at=T0,
        notices_sent=1,
        removed_at=T0 + timedelta(hours=2),
    )
    records.add_item(
        fast,
        media_url="https://a.example/img/1.jpg",
        sha256=SHA,
        status="verified",
        at=T0,
        md5=hashlib.md5(b"benign test content").hexdigest(),
        pdq=PDQ,
        assessment="baseline",
        matches=[{"bank": "known", "entry_id": 7, "signal_type": "pdq", "distance": 4}],
    )
    records.add_notice(
        fast,
        kind="notice",
        channel="email",
        recipient="abuse@a.example",
        at=T0,
        language="es",
        ok=True,
        detail={"urls": ["https://a.example/one"], "sha256": [SHA]},
    )

    slow = submit("slow", "https://a2.example/two", "a2.example")
    records.update(
        slow,
        at=T0 + timedelta(hours=50),
        status="removed",
        attribution=_attribution("a2.example", "Hoster A", "MX"),
        first_notice_at=T0,
        removed_at=T0 + timedelta(hours=50),
        reappearances=1,
    )
    for hours in (0, 24, 48):
        records.add_notice(
            slow,
            kind="notice" if hours == 0 else "repeat",
            channel="email",
            recipient="abuse@a2.example",
            at=T0 + timedelta(hours=hours),
            language="es",
            ok=True,
        )

    online = submit("online", "https://b.example/three", "b.example")
    records.update(
        online,
        at=T0,
        status="notified",
        attribution=_attribution("b.example", ODD_PROVIDER, "BR"),
        first_notice_at=T0,
    )
    records.add_notice(
        online,
        kind="notice",
        channel="email",
        recipient="abuse@b.example",
        at=T0,
        language="pt_BR",
        ok=True,
    )
    records.add_notice(
        online,
        kind="repeat",
        channel="email",
        recipient="abuse@b.example",
        at=T0 + timedelta(hours=24),
        language="pt_BR",
        ok=False,
        error="connection refused",
    )

    submit("new", "https://c.example/four", "c.example")
    return ids


def stub_report(report_id: int, status: str) -> UrlReport:
    """A report as a stand-in for a hotline part answers it (nothing stored)."""
    return UrlReport(
        id=report_id,
        url="https://x.example/p",
        host="x.example",
        status=status,
        created_at=T0,
        updated_at=T0,
    )


def stub_notice(report_id: int, notice_id: int) -> Notice:
    """A sent e-mail notice as a stand-in notifier answers it (nothing stored)."""
    return Notice(
        id=notice_id,
        report_id=report_id,
        kind="notice",
        channel="email",
        recipient="abuse@x.example",
        at=T0,
        language="es",
        ok=True,
    )
