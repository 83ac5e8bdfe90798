"""The ThreatExchange exchange against a fake of the Graph API (tests/fakes/threatexchange.py):
full and incremental fetches, deletions, skipped types, a malformed page and record quarantined
while the rest lands, 429/5xx retried, reactions as feedback, credentials and settings errors.
Loopback only."""

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
from amparo.exchanges.threatexchange import ThreatExchangeCheckpoint, ThreatExchangeExchange
from clocks import ManualClock
from fakes.threatexchange import APP_ID, PRIVACY_GROUP, TOKEN, FakeThreatExchange

T0 = 1_700_000_000


def pdq() -> str:
    return secrets.token_hex(32)


@pytest.fixture
def fake() -> Iterator[FakeThreatExchange]:
    with FakeThreatExchange() as server:
        yield server


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.fromtimestamp(T0 + 10_000, UTC))


def make(
    fake: FakeThreatExchange,
    clock: ManualClock,
    credentials: dict[str, str] | None = None,
    **settings: Any,
) -> ThreatExchangeExchange:
    http = RetryingClient(sleep=lambda s: None, attempts=4)
    context = ExchangeContext(settings=Settings(), http=http, clock=clock)
    return ThreatExchangeExchange(
        {"privacy_group": PRIVACY_GROUP, "base_url": fake.url, "page_size": 3, **settings},
        Credentials({"access_token": TOKEN} if credentials is None else credentials),
        context,
    )


def live(batches: list[Batch], state: dict[str, str | None] | None = None) -> dict[str, Any]:
    state = {} if state is None else state
    for batch in batches:
        for update in batch.updates:
            if update.deleted:
                state.pop(update.record_id, None)
            else:
                state[update.record_id] = update.signal
    return state


def test_registered() -> None:
    assert exchange_type("threatexchange") is ThreatExchangeExchange


def test_full_then_incremental_fetch_applies_deletions(
    fake: FakeThreatExchange, clock: ManualClock
) -> None:
    ids = [fake.put(pdq(), T0 + i * 10)["id"] for i in range(6)]
    md5 = secrets.token_hex(16)
    md5_id = fake.put(md5, T0 + 60, type="HASH_VIDEO_MD5", tags=["media_type_video"])["id"]
    fake.put("aGVsbG8=", T0 + 61, type="HASH_TMK")
    fake.put("https://example.org/x", T0 + 62, type="URI")
    exchange = make(fake, clock)

    batches = list(exchange.fetch(None))
    assert len(batches) == 3
    assert [b.full for b in batches] == [True] * 3 and [b.complete for b in batches] == [0, 0, 1]
    assert "start_time" not in fake.requests[0].query  # everything
    state = live(batches)
    assert len(state) == 7 and state[md5_id] == md5
    assert sum(b.skipped for b in batches) == 2  # TMK and URI: skipped, not malformed
    assert not any(b.malformed for b in batches)
    update = batches[0].updates[0]
    assert update.signal_type == "pdq" and update.tags == ("csam",)
    assert update.category == "MALICIOUS" and update.source_ids == (
        f"descriptor:{int(ids[0]) + 1}",
    )
    last = batches[-1].checkpoint
    assert isinstance(last, ThreatExchangeCheckpoint)
    assert last.update_time == T0 + 62 and last.next_url is None
    # The stored position never holds the token.
    assert all(TOKEN not in (b.checkpoint.dumps() if b.checkpoint else "") for b in batches)

    # Incremental: a tombstone, an update without descriptors (the client's #834 rule), a new one.
    fake.put(fake.updates[ids[0]]["indicator"], T0 + 100, id=ids[0], should_delete=True)
    fake.put_raw(
        ids[1],
        {
            "id": ids[1],
            "indicator": "x",
            "type": "HASH_PDQ",
            "last_updated": T0 + 101,
            "should_delete": False,
        },
    )
    new = pdq()
    new_id = fake.put(new, T0 + 102)["id"]
    fake.requests.clear()
    batches = list(exchange.fetch(exchange.load_checkpoint(last.to_json())))
    assert fake.requests[0].query["start_time"] == str(T0 + 62)
    assert not any(b.full for b in batches)
    deleted = {u.record_id for b in batches for u in b.updates if u.deleted}
    assert deleted == {ids[0], ids[1]}
    live(batches, state)
    assert ids[0] not in state and state[new_id] == new


def test_resumes_with_the_cursor_and_restarts_when_it_is_old_or_refused(
    fake: FakeThreatExchange, clock: ManualClock
) -> None:
    for i in range(7):
        fake.put(pdq(), T0 + i)
    exchange = make(fake, clock)
    checkpoint = next(iter(exchange.fetch(None))).checkpoint
    assert isinstance(checkpoint, ThreatExchangeCheckpoint) and checkpoint.next_url
    assert "access_token" not in checkpoint.next_url

    fake.requests.clear()
    rest = list(exchange.fetch(exchange.load_checkpoint(checkpoint.to_json())))
    assert "after" in fake.requests[0].query and fake.requests[0].query["access_token"] == TOKEN
    assert sum(len(b.updates) for b in rest) == 4

    after = fake.requests[0].query["after"]
    fake.refuse_cursors = {after}
    fake.requests.clear()
    again = list(exchange.fetch(checkpoint))
    assert "after" not in fake.requests[1].query
    assert fake.requests[1].query["start_time"] == str(checkpoint.update_time)
    assert sum(len(b.updates) for b in again) == 5  # from update_time (T0 + 2) on

    clock.advance(2 * 3600)  # too old to trust: restart from the time without asking
    fake.requests.clear()
    list(exchange.fetch(checkpoint))
    assert "after" not in fake.requests[0].query

    fake.refuse_all_cursors = True
    with pytest.raises(ExchangeError, match="just issued"):
        list(exchange.fetch(None))


def test_stale_checkpoint_fetches_everything(fake: FakeThreatExchange, clock: ManualClock) -> None:
    fake.put(pdq(), T0)
    exchange = make(fake, clock)
    checkpoint = list(exchange.fetch(None))[-1].checkpoint
    clock.advance(86 * 86400)
    batches = list(exchange.fetch(checkpoint))
    assert batches[-1].full and batches[-1].complete


def test_malformed_page_is_quarantined_while_the_rest_lands(
    fake: FakeThreatExchange, clock: ManualClock
) -> None:
    values = [pdq() for _ in range(9)]
    for i, value in enumerate(values):
        fake.put(value, T0 + i * 100)
    fake.corrupt_times = {T0 + 400}  # page 2 (updates 3..5) is cut in half
    exchange = make(fake, clock, skip_seconds=250)
    batches = list(exchange.fetch(None))
    bad = [m for b in batches for m in b.malformed]
    assert len(bad) == 1 and bad[0].record_id is None and "not JSON" in bad[0].reason
    assert bad[0].retry == {"start_time": T0 + 200, "stop_time": T0 + 450}
    assert set(live(batches).values()) == {*values[:3], *values[5:]}
    assert not any(b.complete for b in batches)

    fake.corrupt_times = set()
    again = list(exchange.refetch(bad[0].retry or {}))
    assert all(b.checkpoint is None for b in again)
    assert set(live(again).values()) == set(values[2:5])
    fake.corrupt_times = {T0 + 400}
    with pytest.raises(ExchangeError, match="unreadable"):
        list(exchange.refetch(bad[0].retry or {}))


def test_malformed_updates_are_quarantined_and_the_page_lands(
    fake: FakeThreatExchange, clock: ManualClock
) -> None:
    good = pdq()
    fake.put(good, T0)
    bad_id = fake.put("not-a-pdq", T0 + 1)["id"]
    fake.put_raw("x", {"indicator": pdq(), "type": "HASH_PDQ", "last_updated": T0 + 2})
    odd = fake.put(pdq(), T0 + 3)
    odd["descriptors"] = {"data": "nope"}
    batches = list(make(fake, clock, page_size=10).fetch(None))
    assert [u.signal for b in batches for u in b.updates] == [good]
    bad = [m for b in batches for m in b.malformed]
    assert [m.record_id for m in bad] == [bad_id, None, odd["id"]]
    assert bad[0].retry == {"start_time": T0 + 1, "stop_time": T0 + 2, "record_id": bad_id}
    again = list(make(fake, clock).refetch(bad[0].retry or {}))
    assert [m.record_id for b in again for m in b.malformed] == [bad_id]


def test_429_and_5xx_are_retried(fake: FakeThreatExchange, clock: ManualClock) -> None:
    fake.put(pdq(), T0)
    fake.fail = [429, 502, 4, 503]
    exchange = make(fake, clock)
    assert sum(len(b.updates) for b in exchange.fetch(None)) == 1
    assert exchange.context.http.retries == 4


def test_feedback_reacts_to_other_apps_descriptors(
    fake: FakeThreatExchange, clock: ManualClock
) -> None:
    theirs = fake.put(pdq(), T0)
    mine = fake.put(pdq(), T0 + 1, owner=APP_ID)
    exchange = make(fake, clock)
    fake.fail = [500]
    exchange.send_opinion(Opinion(theirs["id"], "pdq", theirs["indicator"], "true_positive"))
    exchange.send_opinion(Opinion(theirs["id"], "pdq", theirs["indicator"], "false_positive"))
    exchange.send_opinion(Opinion(mine["id"], "pdq", mine["indicator"], "false_positive"))
    posts = [r for r in fake.requests if r.method == "POST"]
    descriptor = theirs["descriptors"]["data"][0]["id"]
    assert [(p.path, p.body["reactions"]) for p in posts] == [
        (f"/v26.0/{descriptor}", "HELPFUL"),
        (f"/v26.0/{descriptor}", "DISAGREE_WITH_TAGS"),
    ]  # no reaction to this app's own descriptor
    assert all(p.body["access_token"] == TOKEN and "access_token" not in p.path for p in posts)
    lookups = [r for r in fake.requests if r.method == "GET"]
    assert lookups[-1].path == f"/v26.0/{mine['id']}"
    assert "descriptors" in lookups[-1].query["fields"]
    with pytest.raises(InputError):
        exchange.send_opinion(Opinion(theirs["id"], "pdq", "x", "maybe"))


def test_wrong_or_missing_credentials(fake: FakeThreatExchange, clock: ManualClock) -> None:
    fake.put(pdq(), T0)
    with pytest.raises(CredentialsError, match="access token"):
        list(make(fake, clock, {"access_token": f"{APP_ID}|wrong"}).fetch(None))
    with pytest.raises(CredentialsError):
        list(make(fake, clock, {}).fetch(None))
    joined = make(fake, clock, {"app_id": APP_ID, "app_secret": TOKEN.partition("|")[2]})
    assert sum(len(b.updates) for b in joined.fetch(None)) == 1
    http = RetryingClient(sleep=lambda s: None)
    bare = ThreatExchangeExchange(
        {"privacy_group": 1}, None, ExchangeContext(settings=Settings(), http=http)
    )
    with pytest.raises(CredentialsError):
        list(bare.fetch(None))


def test_unknown_privacy_group_is_a_clear_error(
    fake: FakeThreatExchange, clock: ManualClock
) -> None:
    with pytest.raises(ExchangeError, match="privacy group"):
        list(make(fake, clock, privacy_group=42).fetch(None))


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"privacy_group": "abc"},
        {"privacy_group": -1},
        {"privacy_group": 1, "base_url": "file:///etc"},
        {"privacy_group": 1, "page_size": 5000},
        {"privacy_group": 1, "subscription_key": "x"},
    ],
)
def test_bad_settings(settings: dict[str, Any]) -> None:
    http = RetryingClient(sleep=lambda s: None)
    with pytest.raises(InputError):
        ThreatExchangeExchange(settings, None, ExchangeContext(settings=Settings(), http=http))


def test_settings_defaults() -> None:
    checked = ThreatExchangeExchange.check_settings({"privacy_group": "303636684709969"})
    assert checked["privacy_group"] == 303636684709969
    assert checked["base_url"] == "https://graph.facebook.com/v26.0"


def test_the_fake_speaks_what_python_threatexchange_expects(fake: FakeThreatExchange) -> None:
    api = pytest.importorskip("threatexchange.exchanges.clients.fb_threatexchange.api")
    updates_mod = pytest.importorskip(
        "threatexchange.exchanges.clients.fb_threatexchange.threat_updates"
    )
    impl = pytest.importorskip("threatexchange.exchanges.impl.fb_threatexchange_api")
    from amparo.exchanges import threatexchange_wire

    assert threatexchange_wire.BASE_URL == api.ThreatExchangeAPI._TE_BASE_URL
    values = [pdq() for _ in range(5)]
    for i, value in enumerate(values):
        fake.put(value, T0 + i)
    fake.put(values[0], T0 + 9, id=fake.put(pdq(), T0 + 8)["id"], should_delete=True)
    client = api.ThreatExchangeAPI(TOKEN, endpoint_override=fake.url)
    cursor = client.get_threat_updates(
        PRIVACY_GROUP,
        start_time=T0,
        page_size=2,
        fields=updates_mod.ThreatUpdateJSON.te_threat_updates_fields(),
        decode_fn=updates_mod.ThreatUpdateJSON,
    )
    pages = list(cursor)
    assert len(pages) == 3
    seen = [u for page in pages for u in page]
    assert [u.indicator for u in seen[:5]] == values and seen[-1].should_delete
    records = [
        impl.FBThreatExchangeIndicatorRecord.from_threatexchange_json(client.app_id, u)
        for u in seen
    ]
    assert all(r is not None for r in records[:5]) and records[-1] is None
    descriptors = client.get_threat_descriptors_from_indicator(int(seen[0].id))
    assert descriptors[0]["owner"]["id"]
    client.react_upvote_threat_descriptor(descriptors[0]["id"])
    assert fake.requests[-1].method == "POST" and fake.requests[-1].query["reactions"] == "HELPFUL"
