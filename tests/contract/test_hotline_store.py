"""The hotline's repository (store/hotline.py) on SQLite and PostgreSQL: one open report per
URL (a second report joins it; a closed one frees the URL), items once per content, due work
found by its time, notices and the RDAP cache."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from amparo.config import Settings
from amparo.errors import NotFoundError
from amparo.hotline.model import Attribution
from amparo.store import Store
from amparo.store.hotline import HotlineRepository
from clocks import ManualClock

URL = "http://example.net/page"
KEY = "a" * 64


def test_reports_join_while_open_and_start_again_once_closed(settings: Settings) -> None:
    store = Store(settings.resolved_database_url)
    try:
        clock = ManualClock()
        repo = HotlineRepository(store.db)
        first, joined = repo.submit(URL, KEY, "example.net", at=clock.now, channel="web")
        assert not joined and first.status == "new" and first.submissions == 1
        clock.advance(60)
        again, joined = repo.submit(
            URL, KEY, "example.net", at=clock.now, channel="api", reporter="partner", language="es"
        )
        assert joined and again.id == first.id and again.submissions == 2
        assert [s.channel for s in repo.submissions(first.id)] == ["web", "api"]
        closed = repo.update(first.id, at=clock.now, status="closed")
        assert closed.status == "closed" and repo.find_open(KEY) is None
        fresh, joined = repo.submit(URL, KEY, "example.net", at=clock.now, channel="web")
        assert not joined and fresh.id != first.id
        # Reopening the old one while a newer report holds the URL keeps one open report.
        repo.update(first.id, at=clock.now, status="confirmed")
        assert repo.find_open(KEY).id == fresh.id  # type: ignore[union-attr]
        assert repo.count(statuses=["new"]) == 1
        with pytest.raises(NotFoundError):
            repo.get(10**12)
    finally:
        store.close()


def test_concurrent_reports_of_one_url_open_one_report(settings: Settings) -> None:
    url = settings.resolved_database_url
    Store(url).close()
    stores = [Store(url) for _ in range(4)]
    try:
        clock = ManualClock()
        barrier = threading.Barrier(len(stores))
        ids: list[int] = []
        errors: list[BaseException] = []

        def report(store: Store) -> None:
            barrier.wait()
            try:
                got, _ = HotlineRepository(store.db).submit(
                    URL, KEY, "example.net", at=clock.now, channel="web"
                )
                ids.append(got.id)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=report, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(ids) == len(stores) and len(set(ids)) == 1
        assert HotlineRepository(stores[0].db).get(ids[0]).submissions == len(stores)
    finally:
        for s in stores:
            s.close()


def test_items_due_work_notices_and_rdap_cache(settings: Settings) -> None:
    store = Store(settings.resolved_database_url)
    try:
        clock = ManualClock()
        repo = HotlineRepository(store.db)
        report, _ = repo.submit(URL, KEY, "example.net", at=clock.now, channel="web")
        assert repo.due("next_crawl_at", ["new"], clock.now, 10) == [report.id]
        item, new = repo.add_item(
            report.id,
            media_url="http://example.net/a.jpg",
            sha256="b" * 64,
            status="verified",
            at=clock.now,
            matches=[{"bank": "demo", "entry_id": 1}],
            assessment="baseline",
        )
        assert new and item.confirmed and item.matches[0]["bank"] == "demo"
        clock.advance(5)
        same, new = repo.add_item(
            report.id, media_url="http://x/b.jpg", sha256="b" * 64, status="unknown", at=clock.now
        )
        assert not new and same.id == item.id and same.last_seen == clock.now
        gone = repo.update_item(item.id, online=False, removed_at=clock.now)
        assert not gone.online and gone.removed_at == clock.now
        assert repo.removed_elsewhere("example.net", "b" * 64, exclude_report=0) == [report.id]
        attribution = Attribution(host="example.net", country="MX", provider="Example SA", asn=1)
        updated = repo.update(
            report.id,
            at=clock.now,
            status="notified",
            attribution=attribution,
            next_notice_at=clock.now + timedelta(hours=24),
            media_urls=["http://example.net/a.jpg"],
        )
        assert updated.country == "MX" and updated.attribution == attribution
        assert updated.media_urls == ("http://example.net/a.jpg",)
        assert repo.list(country="mx")[0].id == report.id
        assert repo.due("next_notice_at", ["notified"], clock.now, 10) == []
        clock.advance(24 * 3600)
        assert repo.due("next_notice_at", ["notified"], clock.now, 10) == [report.id]
        notice = repo.add_notice(
            report.id,
            kind="notice",
            channel="email",
            recipient="abuse@example.net",
            at=clock.now,
            language="es",
            ok=True,
            detail={"subject": "x"},
        )
        assert notice.detail == {"subject": "x"} and repo.notice_counts() == {report.id: 1}
        assert repo.rdap_cached("ip:192.0.2.1", newer_than=clock.now) is None
        repo.rdap_store("ip:192.0.2.1", {"email": "abuse@x"}, at=clock.now)
        repo.rdap_store("ip:192.0.2.1", {"email": "abuse@y"}, at=clock.now)
        assert repo.rdap_cached("ip:192.0.2.1", newer_than=clock.now) == {"email": "abuse@y"}
        assert repo.rdap_cached("ip:192.0.2.1", newer_than=clock.now + timedelta(1)) is None
        assert [r.id for r in repo.each(chunk=1)] == [report.id]
    finally:
        store.close()
