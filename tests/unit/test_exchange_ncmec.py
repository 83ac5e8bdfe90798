"""The ncmec exchange against a fake NCMEC hash sharing API on loopback."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from amparo.config import Settings, load_settings
from amparo.errors import CredentialsError, ExchangeError, InputError, UrlRefusedError
from amparo.exchanges.base import ExchangeContext, exchange_type
from amparo.exchanges.http import RetryingClient
from amparo.exchanges.model import Batch, Checkpoint, Credentials, Opinion, Update
from amparo.exchanges.ncmec import NCMECCheckpoint, NCMECExchange
from amparo.exchanges.ncmec_wire import next_page_after
from clocks import ManualClock
from fakes.ncmec import FakeNCMEC

pytest.importorskip("threatexchange")

T0 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
DAY = 86400


def md5() -> str:
    return secrets.token_hex(16)


def pdq() -> str:
    return secrets.token_hex(32)


@pytest.fixture
def fake() -> Iterator[FakeNCMEC]:
    with FakeNCMEC(page_size=2) as server:
        yield server


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2024, 6, 1, tzinfo=UTC))


@pytest.fixture
def amparo_settings(tmp_path: Path) -> Settings:
    return load_settings(
        env={}, overrides={"home": tmp_path / "home", "url_allowlist": "127.0.0.1"}
    )


def make(
    fake: FakeNCMEC,
    settings: Settings,
    clock: ManualClock,
    *,
    password: str = "secret",
    **extra: Any,
) -> NCMECExchange:
    http = RetryingClient(sleep=lambda s: None, attempts=4)
    context = ExchangeContext(settings=settings, http=http, clock=clock)
    cls = exchange_type("ncmec")
    exchange = cls(
        {"environment": "Industry", "base_url": fake.url, **extra},
        Credentials({"user": "user", "password": password}),
        context,
    )
    assert isinstance(exchange, NCMECExchange)
    return exchange


def run(exchange: NCMECExchange, checkpoint: Checkpoint | None) -> list[Batch]:
    return list(exchange.fetch(checkpoint))


def upserts(batches: list[Batch]) -> dict[str, Update]:
    out: dict[str, Update] = {}
    for batch in batches:
        for update in batch.updates:
            if update.deleted:
                out.pop(update.record_id, None)
            else:
                out[update.record_id] = update
    return out


def test_full_fetch_pages_and_checkpoints_only_after_the_window(
    fake: FakeNCMEC, amparo_settings: Settings, clock: ManualClock
) -> None:
    a, b, v = md5(), pdq(), md5()
    # stored out of time order, as NCMEC serves them
    fake.add(42, "image3", T0 + 3 * DAY, md5=md5())
    fake.add(42, "image1", T0 + DAY, md5=a, pdq=b, pdna="a1" * 20)
    fake.add(43, "video1", T0 + 2 * DAY, kind="video", classification="B1", md5=v)
    exchange = make(fake, amparo_settings, clock)
    batches = run(exchange, None)

    records = upserts(batches)
    assert set(records) == {"42-image3:md5", "42-image1:md5", "42-image1:pdq", "43-video1:md5"}
    assert records["42-image1:pdq"].signal == b
    assert records["43-video1:md5"].category == "B1"
    assert records["43-video1:md5"].tags == ("video",)
    provenance = records["42-image1:md5"].provenance
    assert provenance is not None and provenance.origin == "ncmec"
    assert provenance.classification == "A1" and provenance.jurisdiction == "US"
    # two pages: the first batch's checkpoint stays at the window start with the paging URL
    middle = batches[0].checkpoint
    assert isinstance(middle, NCMECCheckpoint)
    assert middle.window_start == 0 and middle.paging_url and middle.window_end
    last = batches[-1].checkpoint
    assert isinstance(last, NCMECCheckpoint) and last.paging_url is None
    assert last.window_start == int(clock().timestamp()) - 5
    # from/to are UTC dates
    first = fake.entry_requests()[0]
    assert first.query["from"] == ["1970-01-01T00:00:00Z"]
    assert first.user == "user"


def test_incremental_fetch_and_deletion(
    fake: FakeNCMEC, amparo_settings: Settings, clock: ManualClock
) -> None:
    fake.add(42, "image1", T0, md5=md5())
    fake.add(42, "image2", T0, md5=md5())
    exchange = make(fake, amparo_settings, clock)
    batches = run(exchange, None)
    checkpoint = batches[-1].checkpoint
    assert set(upserts(batches)) == {"42-image1:md5", "42-image2:md5"}

    clock.advance(3600)
    later = int(clock().timestamp()) - 60
    fake.delete(42, "image1", later)
    fake.add(42, "image9", later, pdq=pdq())
    exchange = make(fake, amparo_settings, clock)
    restored = exchange.load_checkpoint(checkpoint.to_json() if checkpoint else None)
    batches = run(exchange, restored)
    updates = [u for b in batches for u in b.updates]
    assert {u.record_id for u in updates if not u.deleted} == {"42-image9:pdq"}
    deleted = {u.record_id for u in updates if u.deleted}
    assert "42-image1:md5" in deleted and "42-image1:pdq" in deleted
    # only the new window was asked for
    assert fake.entry_requests()[-1].query["from"] == [
        datetime.fromtimestamp(restored.window_start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # type: ignore[union-attr]
    ]
    # nothing new: one empty batch that keeps the checkpoint moving
    clock.advance(10)
    again = run(exchange, batches[-1].checkpoint)
    assert not upserts(again)


def test_resume_mid_window_and_expired_paging_url(
    fake: FakeNCMEC, amparo_settings: Settings, clock: ManualClock
) -> None:
    for n in range(5):
        fake.add(42, f"image{n}", T0 + n, md5=md5())
    exchange = make(fake, amparo_settings, clock)
    stream = exchange.fetch(None)
    first = next(stream)
    del stream  # the fetch dies after the first batch was stored
    mid = first.checkpoint
    assert isinstance(mid, NCMECCheckpoint) and mid.paging_url
    seen = upserts([first])

    resumed = run(make(fake, amparo_settings, clock), mid)
    assert fake.entry_requests()[-len(resumed)].query.get("start") == ["3"]
    seen.update(upserts(resumed))
    assert len(seen) == 5

    clock.advance(13 * 3600)  # the paging URL expired: the window is read again from its start
    before = len(fake.entry_requests())
    again = run(make(fake, amparo_settings, clock), mid)
    asked = fake.entry_requests()[before]
    assert "start" not in asked.query
    assert len(upserts(again)) == 5


def test_malformed_page_is_quarantined_and_the_rest_lands(
    fake: FakeNCMEC, amparo_settings: Settings, clock: ManualClock
) -> None:
    for n in range(6):
        fake.add(42, f"image{n}", T0 + n, md5=md5())
    fake.break_page(start=3)  # the second page (entries 3 and 4)
    exchange = make(fake, amparo_settings, clock)
    batches = run(exchange, None)
    assert set(upserts(batches)) == {f"42-image{n}:md5" for n in (0, 1, 4, 5)}
    bad = [m for b in batches for m in b.malformed]
    assert len(bad) == 1 and bad[0].record_id is None and bad[0].retry
    assert "start=3" in bad[0].retry["url"]
    last = batches[-1].checkpoint
    assert isinstance(last, NCMECCheckpoint) and last.paging_url is None  # not stalled

    fake.mend_pages()
    retried = list(exchange.refetch(bad[0].retry))
    assert set(upserts(retried)) == {"42-image2:md5", "42-image3:md5"}
    assert all(b.checkpoint is None for b in retried)


def test_malformed_first_page_splits_then_quarantines_the_window(
    fake: FakeNCMEC, amparo_settings: Settings, clock: ManualClock
) -> None:
    fake.add(42, "good", T0 - 10 * DAY, md5=md5())
    fake.add(42, "bad", T0, md5=md5())
    fake.add(42, "late", T0 + 10 * DAY, md5=md5())
    exchange = make(fake, amparo_settings, clock, start_time="2023-12-01T00:00:00Z")
    original = exchange._parse

    def parse(content: bytes) -> Any:
        page = original(content)
        if any(u.record_id.startswith("42-bad") for u in page.updates):
            return type(page)(broken="injected", raw=content)
        return page

    exchange._parse = parse  # type: ignore[method-assign]
    batches = run(exchange, None)
    assert set(upserts(batches)) == {"42-good:md5", "42-late:md5"}
    bad = [m for b in batches for m in b.malformed]
    assert len(bad) == 1 and bad[0].retry is not None
    window = bad[0].retry
    assert window["window_end"] - window["window_start"] <= 3600
    assert window["window_start"] <= T0 < window["window_end"]
    exchange._parse = original  # type: ignore[method-assign]
    assert set(upserts(list(exchange.refetch(window)))) == {"42-bad:md5"}


def test_bad_entry_and_bad_hash_are_quarantined_alone(
    fake: FakeNCMEC, amparo_settings: Settings, clock: ManualClock
) -> None:
    fake.add(42, "ok", T0, md5=md5())
    fake.add(42, "badhash", T0, md5="not-a-hash")
    fake.page_size = 10
    exchange = make(fake, amparo_settings, clock)
    batches = run(exchange, None)
    assert set(upserts(batches)) == {"42-ok:md5"}
    bad = [m for b in batches for m in b.malformed]
    assert [m.record_id for m in bad] == ["42-badhash:md5"]


def test_429_and_5xx_are_retried(
    fake: FakeNCMEC, amparo_settings: Settings, clock: ManualClock
) -> None:
    fake.add(42, "image1", T0, md5=md5())
    fake.fail_next(429, 503, 500)
    exchange = make(fake, amparo_settings, clock)
    batches = run(exchange, None)
    assert set(upserts(batches)) == {"42-image1:md5"}
    assert exchange.context.http.retries == 3


def test_failures_past_the_retries_raise(
    fake: FakeNCMEC, amparo_settings: Settings, clock: ManualClock
) -> None:
    fake.fail_next(503, 503, 503, 503)
    with pytest.raises(ExchangeError, match="failed 4 times"):
        run(make(fake, amparo_settings, clock), None)


def test_member_filter(fake: FakeNCMEC, amparo_settings: Settings, clock: ManualClock) -> None:
    fake.add(42, "mine", T0, md5=md5())
    fake.add(7, "other", T0, md5=md5())
    batches = run(make(fake, amparo_settings, clock, member_id=[42]), None)
    assert set(upserts(batches)) == {"42-mine:md5"}


def test_large_window_is_split_before_it_is_read(
    fake: FakeNCMEC, amparo_settings: Settings, clock: ManualClock
) -> None:
    for n in range(12):
        fake.add(42, f"e{n}", T0 + n * DAY, md5=md5())
    exchange = make(fake, amparo_settings, clock, max_window_entries=4, start_time=T0 - DAY)
    batches = run(exchange, None)
    assert len(upserts(batches)) == 12
    windows = {(r.query["from"][0], r.query["to"][0]) for r in fake.entry_requests()}
    assert len(windows) > 2


def test_feedback_shapes(fake: FakeNCMEC, amparo_settings: Settings, clock: ManualClock) -> None:
    exchange = make(fake, amparo_settings, clock)
    exchange.send_opinion(Opinion("42-image1:md5", "md5", md5(), "true_positive"))
    exchange.send_opinion(Opinion("42-image1:pdq", "pdq", pdq(), "false_positive"))
    guid = "11111111-2222-3333-4444-555555555555"
    exchange.send_opinion(Opinion("43-video1:md5", "md5", md5(), "false_positive", reason=guid))
    assert [f[:3] for f in fake.feedback] == [
        ("42", "image1", "MD5"),
        ("42", "image1", "PDQ"),
        ("43", "video1", "MD5"),
    ]
    affirmative = ET.fromstring(fake.feedback[0][3])
    ns = "{https://hashsharing.ncmec.org/hashsharing/v2}"
    assert affirmative.tag == f"{ns}feedbackSubmission"
    assert [c.tag for c in affirmative] == [f"{ns}affirmative"]
    negative = ET.fromstring(fake.feedback[1][3])
    assert negative.findtext(f"{ns}negative/{ns}reasonIds/{ns}guid") == (
        "01234567-abcd-0123-4567-012345678900"  # the only reason NCMEC offers for PDQ
    )
    assert (
        ET.fromstring(fake.feedback[2][3]).findtext(f"{ns}negative/{ns}reasonIds/{ns}guid") == guid
    )
    assert any(r.path.endswith("/v2/feedback/PDQ/reasons") for r in fake.requests)
    puts = [r for r in fake.requests if r.method == "PUT"]
    assert all(r.user == "user" for r in puts)


def test_negative_feedback_needs_a_reason_when_ncmec_offers_several(
    fake: FakeNCMEC, amparo_settings: Settings, clock: ManualClock
) -> None:
    fake.reasons["MD5"] = {
        "aaaaaaaa-0000-0000-0000-000000000001": "Not CSAM",
        "aaaaaaaa-0000-0000-0000-000000000002": "Duplicate",
    }
    exchange = make(fake, amparo_settings, clock)
    with pytest.raises(InputError, match="needs a reason"):
        exchange.send_opinion(Opinion("42-a:md5", "md5", md5(), "false_positive"))
    exchange.send_opinion(Opinion("42-a:md5", "md5", md5(), "false_positive", reason="duplicate"))
    assert "aaaaaaaa-0000-0000-0000-000000000002" in fake.feedback[-1][3]
    with pytest.raises(InputError, match="not an NCMEC record id"):
        exchange.send_opinion(Opinion("md5:abc", "md5", md5(), "true_positive"))


def test_wrong_credentials(fake: FakeNCMEC, amparo_settings: Settings, clock: ManualClock) -> None:
    with pytest.raises(CredentialsError):
        run(make(fake, amparo_settings, clock, password="wrong"), None)
    http = RetryingClient(sleep=lambda s: None)
    context = ExchangeContext(settings=amparo_settings, http=http, clock=clock)
    with pytest.raises(CredentialsError, match="password"):
        NCMECExchange({"environment": "Industry"}, Credentials({"user": "u"}), context)


def test_bad_settings(amparo_settings: Settings) -> None:
    context = ExchangeContext(settings=amparo_settings, http=RetryingClient())
    creds = Credentials({"user": "u", "password": "p"})
    with pytest.raises(InputError, match="unknown NCMEC environment"):
        NCMECExchange({"environment": "Narnia"}, creds, context)
    with pytest.raises(InputError, match="does not know"):
        NCMECExchange({"environment": "NGO", "colour": "red"}, creds, context)
    # environment names are python-threatexchange's, any case
    exchange = NCMECExchange({"environment": "test_industry"}, creds, context)
    assert exchange.base_url == "https://exttest.cybertip.org/hashsharing"
    with pytest.raises(UrlRefusedError, match="https"):
        NCMECExchange(
            {"environment": "NGO", "base_url": "http://ncmec.example.org/x"}, creds, context
        )


def test_next_page_after() -> None:
    url = "http://h/hashsharing/v2/entries?from=a&to=b&start=3&size=2&max=6"
    assert next_page_after(url) == "/v2/entries?from=a&to=b&start=5&size=2&max=6"
    assert next_page_after("http://h/x/v2/entries?from=a&to=b&start=5&size=2&max=6") is None
    assert next_page_after("http://h/x/v2/entries?from=a&to=b") is None


def test_checkpoint_round_trip(clock: ManualClock) -> None:
    checkpoint = NCMECCheckpoint(
        fetched_at=clock().isoformat(),
        window_start=5,
        window_end=10,
        paging_url="/v2/entries?start=3",
        paging_url_at=clock().isoformat(),
    )
    back = NCMECCheckpoint.from_json(checkpoint.to_json())
    assert back == checkpoint
    assert not back.is_stale(clock())
    assert isinstance(back, NCMECCheckpoint)
    assert back.paging_expired(clock() + timedelta(hours=13))
