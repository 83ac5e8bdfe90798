"""The StopNCII exchange against a fake of its HTTP API (tests/fakes/stopncii.py): full and
incremental fetches, withdrawals, a malformed page and record quarantined while the rest lands,
429/5xx retried, feedback shapes, credentials and settings errors. Loopback only."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from amparo.config import Settings
from amparo.errors import CredentialsError, ExchangeError, InputError
from amparo.exchanges.base import ExchangeContext, exchange_type
from amparo.exchanges.http import RetryingClient
from amparo.exchanges.model import Batch, Credentials, Opinion
from amparo.exchanges.stopncii import StopNCIICheckpoint, StopNCIIExchange
from clocks import ManualClock
from fakes.stopncii import FEEDBACK_KEY, FETCH_KEY, SUBSCRIPTION_KEY, FakeStopNCII

T0 = 1_700_000_000
KEYS = {
    "subscription_key": SUBSCRIPTION_KEY,
    "fetch_function_key": FETCH_KEY,
    "feedback_function_key": FEEDBACK_KEY,
}


def pdq() -> str:
    return secrets.token_hex(32)


@pytest.fixture
def fake() -> Iterator[FakeStopNCII]:
    with FakeStopNCII() as server:
        yield server


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.fromtimestamp(T0 + 10_000, UTC))


def make(
    fake: FakeStopNCII,
    clock: ManualClock,
    keys: dict[str, str] | None = None,
    **settings: Any,
) -> StopNCIIExchange:
    http = RetryingClient(sleep=lambda s: None, attempts=4)
    context = ExchangeContext(settings=Settings(), http=http, clock=clock)
    return StopNCIIExchange(
        {"base_url": fake.url, "page_size": 3, **settings},
        Credentials(KEYS if keys is None else keys),
        context,
    )


def apply(batches: list[Batch], state: dict[str, tuple[str | None, str | None]]) -> None:
    """What the runner does with the updates (the checkpoints are the tests' business)."""
    for batch in batches:
        for update in batch.updates:
            if update.deleted:
                state.pop(update.record_id, None)
            else:
                state[update.record_id] = (update.signal_type, update.signal)


def test_registered() -> None:
    assert exchange_type("stopncii") is StopNCIIExchange


def test_full_then_incremental_fetch_applies_withdrawals(
    fake: FakeStopNCII, clock: ManualClock
) -> None:
    hashes = [pdq() for _ in range(7)]
    for i, value in enumerate(hashes):
        fake.put(value, T0 + i * 10)
    md5 = secrets.token_hex(16)
    fake.put(md5, T0 + 75, signal_type="VideoMD5")
    fake.put("tmk-blob", T0 + 76, signal_type="VideoTMK")
    exchange = make(fake, clock)

    batches = list(exchange.fetch(None))
    assert len(batches) == 3  # 9 records, 3 a page
    assert all(b.full for b in batches) and [b.complete for b in batches] == [0, 0, 1]
    state: dict[str, tuple[str | None, str | None]] = {}
    apply(batches, state)
    assert state[f"ImagePDQ:{hashes[0]}"] == ("pdq", hashes[0])
    assert state[f"VideoMD5:{md5}"] == ("md5", md5)
    assert len(state) == 8
    assert sum(b.skipped for b in batches) == 1  # VideoTMK: not matched, not malformed
    assert not any(b.malformed for b in batches)
    last = batches[-1].checkpoint
    assert isinstance(last, StopNCIICheckpoint) and last.page_token is None
    assert last.next_set_timestamp == T0 + 76

    # Incremental: one withdrawn, one deleted, one new; nothing else is sent again.
    fake.put(hashes[1], T0 + 100, status="Withdrawn")
    fake.put(hashes[2], T0 + 101, status="Deleted")
    new = pdq()
    fake.put(new, T0 + 102)
    fake.requests.clear()
    checkpoint = exchange.load_checkpoint(last.to_json())
    batches = list(exchange.fetch(checkpoint))
    assert fake.requests[0].query["startTimestamp"] == str(T0 + 76)
    assert not any(b.full for b in batches)
    deleted = {u.record_id for b in batches for u in b.updates if u.deleted}
    assert deleted == {f"ImagePDQ:{hashes[1]}", f"ImagePDQ:{hashes[2]}"}
    apply(batches, state)
    assert f"ImagePDQ:{hashes[1]}" not in state and f"ImagePDQ:{new}" in state
    update = next(u for b in batches for u in b.updates if u.signal == new)
    assert update.provenance is not None and update.provenance.origin == "stopncii"
    assert update.source_ids == (f"case-{T0 + 102}",)


def test_resumes_mid_run_with_the_page_token_and_restarts_when_it_is_old(
    fake: FakeStopNCII, clock: ManualClock
) -> None:
    for i in range(7):
        fake.put(pdq(), T0 + i)
    exchange = make(fake, clock)
    first = next(iter(exchange.fetch(None)))
    checkpoint = first.checkpoint
    assert isinstance(checkpoint, StopNCIICheckpoint) and checkpoint.page_token
    fake.requests.clear()
    rest = list(exchange.fetch(exchange.load_checkpoint(checkpoint.to_json())))
    assert fake.requests[0].query["nextPageToken"] == checkpoint.page_token
    assert sum(len(b.updates) for b in rest) == 4

    clock.advance(2 * 3600)  # the token is too old to trust: the run is read again
    fake.requests.clear()
    again = list(exchange.fetch(checkpoint))
    assert "nextPageToken" not in fake.requests[0].query
    assert fake.requests[0].query["startTimestamp"] == str(checkpoint.start_timestamp)
    assert sum(len(b.updates) for b in again) == 7
    assert not any(b.full for b in again)


def test_a_refused_page_token_restarts_the_run(fake: FakeStopNCII, clock: ManualClock) -> None:
    for i in range(5):
        fake.put(pdq(), T0 + i)
    exchange = make(fake, clock)
    checkpoint = next(iter(exchange.fetch(None))).checkpoint
    assert isinstance(checkpoint, StopNCIICheckpoint) and checkpoint.page_token
    fake.refuse_tokens = {checkpoint.page_token}
    fake.requests.clear()
    batches = list(exchange.fetch(checkpoint))
    assert [r.query.get("nextPageToken") is not None for r in fake.requests[:2]] == [True, False]
    assert sum(len(b.updates) for b in batches) == 5  # the run read again: nothing lost

    fake.refuse_all_tokens = True  # even fresh tokens: the fetch fails instead of looping
    with pytest.raises(ExchangeError, match="just issued"):
        list(exchange.fetch(checkpoint))


def test_stale_checkpoint_fetches_everything(fake: FakeStopNCII, clock: ManualClock) -> None:
    fake.put(pdq(), T0)
    exchange = make(fake, clock)
    checkpoint = list(exchange.fetch(None))[-1].checkpoint
    assert checkpoint is not None
    clock.advance(31 * 86400)
    assert checkpoint.is_stale(clock())
    batches = list(exchange.fetch(checkpoint))
    assert batches[-1].full and batches[-1].complete


def test_malformed_page_is_quarantined_while_the_rest_lands(
    fake: FakeStopNCII, clock: ManualClock
) -> None:
    values = [pdq() for _ in range(9)]
    for i, value in enumerate(values):
        fake.put(value, T0 + i * 100)
    fake.corrupt_times = {T0 + 300}  # page 2 (records 3..5) is cut in half
    exchange = make(fake, clock, skip_seconds=250)
    batches = list(exchange.fetch(None))
    bad = [m for b in batches for m in b.malformed]
    assert len(bad) == 1 and bad[0].record_id is None and "not JSON" in bad[0].reason
    assert bad[0].retry == {"start_timestamp": T0 + 200, "stop_timestamp": T0 + 450}
    landed = {u.signal for b in batches for u in b.updates}
    # Page 1 and everything after the skipped window landed.
    assert landed == {*values[:3], *values[5:]}
    # A full fetch that quarantined a page does not claim to have seen everything.
    assert not any(b.complete for b in batches)

    # The quarantined window, read again once the source is fixed, yields the rest.
    fake.corrupt_times = set()
    again = list(exchange.refetch(bad[0].retry or {}))
    assert all(b.checkpoint is None for b in again)
    assert {u.signal for b in again for u in b.updates} == set(values[2:5])

    # Still broken: the retry fails loudly and the item stays quarantined.
    fake.corrupt_times = {T0 + 300}
    with pytest.raises(ExchangeError, match="unreadable"):
        list(exchange.refetch(bad[0].retry or {}))


def test_pages_broken_without_end_fail_the_fetch(fake: FakeStopNCII, clock: ManualClock) -> None:
    for i in range(4):
        fake.put(pdq(), T0 + i * 10_000)
    fake.corrupt_times = {T0 + i * 10_000 for i in range(4)}
    with pytest.raises(ExchangeError, match="unreadable pages in a row"):
        list(make(fake, clock, skip_seconds=1).fetch(None))


def test_malformed_records_are_quarantined_and_the_page_lands(
    fake: FakeStopNCII, clock: ManualClock
) -> None:
    good = pdq()
    fake.put(good, T0)
    fake.put("not-a-pdq", T0 + 1)
    fake.put(pdq(), T0 + 2, status="Exploded")
    fake.put_raw(("?", "?"), {"lastModtimestamp": T0 + 3, "signalType": "ImagePDQ"})
    batches = list(make(fake, clock, page_size=10).fetch(None))
    assert [u.signal for b in batches for u in b.updates] == [good]
    bad = [m for b in batches for m in b.malformed]
    assert [m.record_id for m in bad] == ["ImagePDQ:not-a-pdq", bad[1].record_id, None]
    assert "invalid ImagePDQ hash" in bad[0].reason and "Exploded" in bad[1].reason
    assert bad[0].retry == {
        "start_timestamp": T0 + 1,
        "stop_timestamp": T0 + 2,
        "record_id": "ImagePDQ:not-a-pdq",
    }


def test_429_and_5xx_are_retried(fake: FakeStopNCII, clock: ManualClock) -> None:
    fake.put(pdq(), T0)
    fake.fail = [429, 503, 500]
    exchange = make(fake, clock)
    batches = list(exchange.fetch(None))
    assert sum(len(b.updates) for b in batches) == 1
    assert exchange.context.http.retries == 3


def test_feedback_shapes(fake: FakeStopNCII, clock: ManualClock) -> None:
    value = pdq()
    exchange = make(fake, clock)
    fake.fail = [503]
    exchange.send_opinion(Opinion(f"ImagePDQ:{value}", "pdq", value, "true_positive"))
    exchange.send_opinion(
        Opinion(f"ImagePDQ:{value}", "pdq", value, "false_positive", reason="not_ncii")
    )
    posts = [r for r in fake.requests if r.method == "POST" and r.path == "/v1/SubmitFeedback"]
    assert len(posts) == 3  # the 503 was retried
    assert posts[1].body == {
        "count": 1,
        "hashFeedbacks": [{"tags": [], "feedbackValue": "Blocked", "hashValue": value}],
    }
    assert posts[2].body["hashFeedbacks"][0] == {
        "tags": ["not_ncii"],
        "feedbackValue": "NotBlocked",
        "hashValue": value,
    }
    assert posts[2].headers["x-functions-key"] == FEEDBACK_KEY
    assert posts[2].headers["ocp-apim-subscription-key"] == SUBSCRIPTION_KEY
    with pytest.raises(InputError):
        exchange.send_opinion(Opinion("ImagePDQ:x", "pdq", value, "maybe"))


def test_wrong_or_missing_credentials(fake: FakeStopNCII, clock: ManualClock) -> None:
    fake.put(pdq(), T0)
    with pytest.raises(CredentialsError):
        list(make(fake, clock, keys={**KEYS, "fetch_function_key": "wrong"}).fetch(None))
    with pytest.raises(CredentialsError, match="subscription_key"):
        list(make(fake, clock, keys={"fetch_function_key": FETCH_KEY}).fetch(None))
    no_feedback = make(fake, clock, keys={k: v for k, v in KEYS.items() if "feedback" not in k})
    with pytest.raises(CredentialsError, match="feedback_function_key"):
        no_feedback.send_opinion(Opinion("ImagePDQ:a", "pdq", pdq(), "true_positive"))
    http = RetryingClient(sleep=lambda s: None)
    bare = StopNCIIExchange({}, None, ExchangeContext(settings=Settings(), http=http))
    with pytest.raises(CredentialsError):
        list(bare.fetch(None))


@pytest.mark.parametrize(
    "settings",
    [
        {"base_url": "ftp://example.org"},
        {"base_url": 5},
        {"page_size": 0},
        {"page_size": "800"},
        {"skip_seconds": -1},
        {"privacy_group": 1},
    ],
)
def test_bad_settings(settings: dict[str, Any]) -> None:
    http = RetryingClient(sleep=lambda s: None)
    with pytest.raises(InputError):
        StopNCIIExchange(settings, None, ExchangeContext(settings=Settings(), http=http))


def test_defaults_point_at_the_real_service() -> None:
    assert StopNCIIExchange.check_settings({})["base_url"] == "https://api.stopncii.org/v1"


# -- the mirror of python-threatexchange's vocabulary, and the fake against its client -------


def test_wire_vocabulary_matches_python_threatexchange() -> None:
    api = pytest.importorskip("threatexchange.exchanges.clients.stopncii.api")
    from amparo.exchanges import stopncii_wire as stopncii

    assert stopncii.BASE_URL == api.StopNCIIAPI.BASE_URL
    assert stopncii.DEFAULT_START_TIMESTAMP == api.StopNCIIAPI.DEFAULT_START_TIME
    types = {t.value for t in api.StopNCIISignalType}
    assert set(stopncii.SIGNAL_TYPES) | stopncii.OTHER_SIGNAL_TYPES == types
    statuses = {s.value for s in api.StopNCIICaseStatus}
    assert statuses == stopncii.LIVE_STATUSES | stopncii.REMOVED_STATUSES
    feedback = {f.value for f in api.StopNCIICSPFeedbackValue}
    assert set(stopncii.FEEDBACK_VALUES.values()) <= feedback


def test_the_fake_speaks_what_python_threatexchange_expects(fake: FakeStopNCII) -> None:
    api = pytest.importorskip("threatexchange.exchanges.clients.stopncii.api")
    values = [pdq() for _ in range(5)]
    for i, value in enumerate(values):
        fake.put(value, T0 + i)
    client = api.StopNCIIAPI(
        SUBSCRIPTION_KEY,
        FETCH_KEY,
        {api.StopNCIIEndpoint.SubmitFeedback: FEEDBACK_KEY},
        base_url_override=fake.url,
    )
    pages = []
    for page in client.fetch_hashes_iter():
        pages.append(page)
        if len(pages) == 1:  # the client's default page size is 800: all in one page
            break
    assert {r.hashValue for r in pages[0].hashRecords} == set(values)
    assert pages[0].nextSetTimestamp == T0 + 4 and not pages[0].hasMoreRecords
    small = client.fetch_hashes(page_size=2)
    assert small.hasMoreRecords and small.nextPageToken
    client.submit_feedback(
        api.StopNCIISignalType.ImagePDQ, values[0], api.StopNCIICSPFeedbackValue.Blocked
    )
    assert fake.requests[-1].body["hashFeedbacks"][0]["feedbackValue"] == "Blocked"
