"""Federation over HTTP: the /v1/feeds routes and scopes, and the ``amparo`` subscriber
exchange driven against a real publisher app (in-process, through a proxy transport that
can flip a byte or replay an older page)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from test_api_support import QUIET

from amparo.api import create_app
from amparo.app import Amparo
from amparo.banks.model import BankInfo, EntryRecord
from amparo.config import Settings, load_settings
from amparo.errors import CredentialsError, ExchangeError, FeedVerificationError, InputError
from amparo.exchanges.amparo_feed import AmparoCheckpoint, AmparoFeedExchange
from amparo.exchanges.base import ExchangeContext, exchange_type
from amparo.exchanges.http import RetryingClient
from amparo.exchanges.model import Batch, Credentials, Opinion
from amparo.exchanges.signing import FeedSigner
from amparo.keys import KeyService

pytestmark = QUIET


class Proxy(httpx.BaseTransport):
    """Forwards to the publisher's app; ``mode`` alters what comes back: ``flip`` changes one
    hex digit of a hash in the page (the JSON stays valid), ``byte`` flips a byte anywhere,
    ``replay`` answers with the first page it saw."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.mode: str | None = None
        self.first: bytes | None = None
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        r = self.client.request(
            request.method, str(request.url), headers=dict(request.headers), content=request.content
        )
        body = r.content
        if self.first is None and b'"page"' in body:
            self.first = body
        if self.mode == "flip":
            i = body.index(b'"signal":"') + len(b'"signal":"')
            body = body[:i] + (b"0" if body[i : i + 1] != b"0" else b"1") + body[i + 1 :]
        elif self.mode == "byte":
            i = len(body) // 2
            body = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        elif self.mode == "replay" and self.first is not None:
            body = self.first
        return httpx.Response(
            r.status_code, headers={"content-type": r.headers["content-type"]}, content=body
        )


@dataclass
class World:
    client: TestClient
    publisher: Amparo
    keys: dict[str, str]
    subscriber_settings: Settings
    proxy: Proxy
    signals: list[str]

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[key]}"}

    def exchange(
        self, *, public_key: str | None = None, key: str = "partner"
    ) -> AmparoFeedExchange:
        settings = {
            "url": "http://testserver",
            "feed": "shared",
            "public_key": public_key or self.publisher.feeds.public_key(),
            "page_size": 3,
        }
        http = RetryingClient(transport=self.proxy, sleep=lambda s: None, attempts=2)
        context = ExchangeContext(self.subscriber_settings, http, organisation="org-b")
        made = exchange_type("amparo")(settings, Credentials({"token": self.keys[key]}), context)
        assert isinstance(made, AmparoFeedExchange)
        return made


@pytest.fixture
def world(sqlite_settings: Settings, tmp_path: Path) -> Iterator[World]:
    settings = replace(sqlite_settings, organisation_id="org-a", feed_page_size=1000)
    subscriber = load_settings(
        env={}, overrides={"home": tmp_path / "b-home", "organisation_id": "org-b"}
    )
    amparo = Amparo(settings)
    service = KeyService(amparo.store)
    keys = {
        s: service.create(s, [s], actor="test").secret for s in ("curator", "matcher", "auditor")
    }
    for name in ("partner", "partner-c", "stranger"):
        keys[name] = service.create(name, ["partner"], actor="test").secret
    amparo.banks.create(BankInfo(name="verified"))
    signals = sorted(secrets.token_hex(32) for _ in range(7))
    amparo.banks.add_entries("verified", [EntryRecord("pdq", s, category="A1") for s in signals])
    amparo.banks.create(BankInfo(name="private"))
    amparo.feeds.publish("shared", "verified")
    amparo.feeds.publish("internal", "private")
    amparo.feeds.grant("shared", "partner", public_key=FeedSigner.of(subscriber).public_pem())
    amparo.feeds.grant("shared", "partner-c")
    with TestClient(create_app(settings, amparo=amparo)) as tc:
        yield World(tc, amparo, keys, subscriber, Proxy(tc), signals)
    amparo.close()


def _drain(batches: Iterator[Batch]) -> tuple[list, AmparoCheckpoint]:
    updates, checkpoint = [], None
    for batch in batches:
        updates.extend(batch.updates)
        assert not batch.malformed
        checkpoint = batch.checkpoint
    assert isinstance(checkpoint, AmparoCheckpoint)
    return updates, checkpoint


def test_subscriber_fetches_verifies_and_receives_withdrawals(world: World) -> None:
    exchange = world.exchange()
    updates, checkpoint = _drain(exchange.fetch(None))
    assert [u.signal for u in updates] == world.signals
    assert world.proxy.requests == 3  # 7 entries, pages of 3
    first = updates[0]
    assert first.category == "A1" and not first.deleted
    assert first.provenance is not None
    assert first.provenance.origin == "org-a" and first.provenance.path == ("org-a",)

    # Incremental: nothing new; then a withdrawal reaches the subscriber as a deletion.
    assert _drain(exchange.fetch(checkpoint))[0] == []
    world.publisher.feeds.withdraw("shared", [int(first.record_id)])
    grant = world.publisher.feeds.show("shared").grants[0]
    assert grant.ack_cursor == checkpoint.cursor and grant.unacknowledged_withdrawals == 1
    later, newer = _drain(exchange.fetch(checkpoint))
    assert [(u.record_id, u.deleted, u.signal) for u in later] == [
        (first.record_id, True, world.signals[0])
    ]
    _drain(exchange.fetch(newer))  # acknowledges the withdrawal
    assert world.publisher.feeds.show("shared").grants[0].unacknowledged_withdrawals == 0


@pytest.mark.parametrize("mode", ["flip", "byte", "replay"])
def test_altered_or_replayed_pages_are_rejected(world: World, mode: str) -> None:
    exchange = world.exchange()
    _, checkpoint = _drain(exchange.fetch(None))
    world.publisher.banks.add_entries("verified", [EntryRecord("pdq", secrets.token_hex(32))])
    world.proxy.mode = mode
    fetched = exchange.fetch(checkpoint)
    with pytest.raises(FeedVerificationError) as caught:
        next(fetched)  # nothing of the page is yielded
    assert "nothing of the page was applied" in (caught.value.hint or "")
    if mode == "replay":
        assert "nonce" in caught.value.message


def test_a_page_signed_by_another_key_is_rejected(world: World, tmp_path: Path) -> None:
    impostor = FeedSigner(tmp_path / "impostor.key").public_pem()
    with pytest.raises(FeedVerificationError, match="pinned key"):
        next(world.exchange(public_key=impostor).fetch(None))


def test_bad_input_gives_clear_errors(world: World) -> None:
    tc = world.client
    top = world.publisher.store.changes.current_seq()
    nonce = secrets.token_urlsafe(24)
    r = tc.get(
        "/v1/feeds/shared",
        params={"cursor": f"{top + 10}.0", "nonce": nonce},
        headers=world.headers("partner"),
    )
    assert r.status_code == 400 and "future" in r.text
    assert "hint" in r.json()["error"]
    r = tc.get("/v1/feeds/shared", params={"cursor": "x.y", "nonce": nonce},
               headers=world.headers("partner"))  # fmt: skip
    assert r.status_code == 400
    r = tc.get("/v1/feeds/shared", params={"nonce": "short"},
               headers=world.headers("partner"))  # fmt: skip
    assert r.status_code == 400 and "nonce" in r.text
    # A subscriber holding such a cursor takes its checkpoint as stale (the publisher was
    # restored from an older backup): it fetches everything again, as a full fetch.
    first = next(world.exchange().fetch(AmparoCheckpoint(cursor=f"{top + 10}.0")))
    assert first.full and [u.signal for u in first.updates] == world.signals[:3]
    # Wrong credentials.
    world.keys["bogus"] = "amparo_not-a-key"
    with pytest.raises(CredentialsError):
        next(world.exchange(key="bogus").fetch(None))
    # Bad settings.
    with pytest.raises(InputError, match="public key"):
        AmparoFeedExchange.check_settings(
            {"url": "http://x", "feed": "shared", "public_key": "nope"}
        )
    with pytest.raises(InputError, match="URL"):
        AmparoFeedExchange.check_settings({"url": "ftp://x", "feed": "shared"})


def test_partner_keys_read_only_their_feeds(world: World) -> None:
    tc, nonce = world.client, secrets.token_urlsafe(24)
    listed = tc.get("/v1/feeds", headers=world.headers("partner")).json()
    assert [f["name"] for f in listed] == ["shared"]
    assert [g["key"] for g in listed[0]["grants"]] == ["partner"]  # not the other partners
    assert len(tc.get("/v1/feeds", headers=world.headers("curator")).json()) == 2
    assert tc.get("/v1/feeds", headers=world.headers("stranger")).json() == []
    for feed in ("internal", "nope"):  # the same answer, existing or not
        r = tc.get(f"/v1/feeds/{feed}", params={"nonce": nonce},
                   headers=world.headers("partner"))  # fmt: skip
        assert r.status_code == 403 and "no grant" in r.json()["error"]["message"]
    r = tc.get("/v1/feeds/shared", params={"nonce": nonce},
               headers=world.headers("stranger"))  # fmt: skip
    assert r.status_code == 403
    assert tc.get("/v1/feeds/nope", params={"nonce": nonce},
                  headers=world.headers("curator")).status_code == 404  # fmt: skip
    for scope in ("matcher", "auditor"):
        assert tc.get("/v1/feeds", headers=world.headers(scope)).status_code == 403
    # Curator-only routes refuse partner keys.
    partner = world.headers("partner")
    refused = [
        tc.post("/v1/feeds", json={"name": "x", "bank": "verified"}, headers=partner),
        tc.get("/v1/feeds/shared/status", headers=partner),
        tc.delete("/v1/feeds/shared", headers=partner),
        tc.post("/v1/feeds/shared/grants", json={"key": "partner"}, headers=partner),
        tc.delete("/v1/feeds/shared/grants/partner-c", headers=partner),
        tc.get("/v1/feeds/shared/opinions", headers=partner),
        tc.post("/v1/feeds/shared/withdraw", json={"entry_ids": [1]}, headers=partner),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    # Matchers cannot read feeds at all.
    r = tc.get("/v1/feeds/shared", params={"nonce": nonce},
               headers=world.headers("matcher"))  # fmt: skip
    assert r.status_code == 403


def test_curators_manage_feeds_over_http(world: World) -> None:
    tc, curator = world.client, world.headers("curator")
    r = tc.post("/v1/feeds", json={"name": "second", "bank": "verified"}, headers=curator)
    assert r.status_code == 201 and r.json()["publisher"] == "org-a"
    assert tc.post("/v1/feeds", json={"name": "second", "bank": "verified"},
                   headers=curator).status_code == 409  # fmt: skip
    assert tc.post("/v1/feeds", json={"name": "third", "bank": "nope"},
                   headers=curator).status_code == 404  # fmt: skip
    r = tc.post("/v1/feeds/second/grants", json={"key": "partner"}, headers=curator)
    assert r.status_code == 201 and r.json()["partner_key_pinned"] is False
    assert tc.post("/v1/feeds/second/grants", json={"key": "matcher"},
                   headers=curator).status_code == 400  # fmt: skip
    shown = tc.get("/v1/feeds/second/status", headers=curator).json()
    assert [g["key"] for g in shown["grants"]] == ["partner"]
    assert tc.delete("/v1/feeds/second/grants/partner", headers=curator).status_code == 204
    assert tc.delete("/v1/feeds/second", headers=curator).status_code == 204
    key = tc.get("/v1/feeds/key", headers=world.headers("partner")).json()
    assert key["public_key"] == world.publisher.feeds.public_key()
    page = tc.get("/v1/feeds/shared", params={"nonce": "n" * 16, "limit": 2},
                  headers=curator).json()  # fmt: skip
    assert set(page) == {"page", "signature"}
    assert set(page["page"]) == {"feed", "publisher", "key_id", "cursor", "next_cursor", "nonce",
                                 "issued_at", "entries", "more"}  # fmt: skip
    assert len(page["page"]["entries"]) == 2 and page["page"]["more"] is True


def test_opinions_flow_back_and_are_counted_per_partner(world: World, tmp_path: Path) -> None:
    exchange = world.exchange()
    updates, _ = _drain(exchange.fetch(None))
    target = updates[2]
    exchange.send_opinion(
        Opinion(target.record_id, "pdq", target.signal or "", "false_positive", "not_illegal")
    )
    # Another partner, no pinned key: its opinion counts too.
    r = world.client.post(
        "/v1/feeds/shared/opinions",
        json={"opinion": {"entry_id": int(target.record_id), "verdict": "false_positive",
                          "reason": None, "at": "2026-12-01T00:00:00+00:00",
                          "partner": "org-c"}, "signature": None},
        headers=world.headers("partner-c"),
    )  # fmt: skip
    assert r.status_code == 201 and r.json()["verified"] is False
    counts = world.client.get("/v1/feeds/shared/opinions", headers=world.headers("curator"))
    assert counts.json()[0] == {
        "entry_id": int(target.record_id),
        "signal_type": "pdq",
        "true_positive": 0,
        "false_positive": 2,
        "partners": {"partner": "false_positive", "partner-c": "false_positive"},
    }
    # Signed by another key than the one pinned for this partner: refused, nothing stored.
    other = replace(world.subscriber_settings, feed_signing_key_file=str(tmp_path / "o.key"))
    impostor = world.exchange()
    impostor.context = replace(impostor.context, settings=other)
    with pytest.raises(ExchangeError, match="400"):
        impostor.send_opinion(Opinion(updates[3].record_id, "pdq", "", "false_positive"))
    r = world.client.post(
        "/v1/feeds/shared/opinions",
        json={"opinion": {"entry_id": int(updates[3].record_id), "verdict": "true_positive",
                          "at": "2026-12-01T00:00:00+00:00", "partner": "org-b"},
              "signature": "AAAA", "key_id": None},
        headers=world.headers("partner"),
    )  # fmt: skip
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "opinion_verification_failed"
    counted = {c["entry_id"] for c in world.client.get(
        "/v1/feeds/shared/opinions", headers=world.headers("curator")).json()}  # fmt: skip
    assert counted == {int(target.record_id)}
    audit = world.publisher.audit.entries(limit=50, action="feed.opinion")
    assert len(audit) == 2


def test_a_reshared_entry_carries_its_whole_path(world: World) -> None:
    world.publisher.banks.create(BankInfo(name="from-x"))
    prov = {"origin": "org-x", "path": ["org-x"], "classification": "A2"}
    world.publisher.banks.add_entries(
        "from-x", [EntryRecord("pdq", secrets.token_hex(32), provenance=prov)]
    )
    world.publisher.feeds.publish("reshared", "from-x")
    world.publisher.feeds.grant("reshared", "partner")
    exchange = world.exchange()
    exchange.settings = {**exchange.settings, "feed": "reshared"}
    updates, _ = _drain(exchange.fetch(None))
    assert updates[0].provenance is not None
    assert updates[0].provenance.path == ("org-x", "org-a")
    assert updates[0].provenance.origin == "org-x"
    assert json.dumps(updates[0].provenance.to_json())  # plain JSON for the entry's column


def test_feeds_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from amparo.cli.main import app

    runner = CliRunner()

    def cli(*args: str) -> object:
        return runner.invoke(app, ["--home", str(tmp_path / "home"), *args])

    pem_file = tmp_path / "partner.pem"
    pem_file.write_text(FeedSigner(tmp_path / "partner.key").public_pem())
    assert cli("bank", "create", "verified").exit_code == 0
    assert cli("bank", "add", "verified", "md5:" + secrets.token_hex(16)).exit_code == 0
    assert cli("feeds", "publish", "shared", "--bank", "verified").exit_code == 0
    assert cli("keys", "create", "hotline-b", "--scope", "partner").exit_code == 0
    done = cli("feeds", "grant", "shared", "hotline-b", "--public-key", str(pem_file))
    assert done.exit_code == 0, done.output  # type: ignore[attr-defined]
    shown = cli("feeds", "show", "shared", "--json")
    data = json.loads(shown.stdout)  # type: ignore[attr-defined]
    assert data["grants"][0]["key"] == "hotline-b" and data["grants"][0]["partner_key_pinned"]
    key = cli("feeds", "key")
    assert key.stdout.startswith("-----BEGIN PUBLIC KEY-----")  # type: ignore[attr-defined]
    assert cli("feeds", "list").exit_code == 0
    assert cli("feeds", "opinions", "shared", "--json").stdout == ""  # type: ignore[attr-defined]
    assert cli("feeds", "withdraw", "shared", "1").exit_code == 0
    bad = cli("feeds", "grant", "shared", "hotline-b", "--public-key", str(tmp_path / "nope"))
    assert bad.exit_code == 2  # type: ignore[attr-defined]
    bad = cli("feeds", "publish", "other", "--bank", "missing")
    assert bad.exit_code == 2  # type: ignore[attr-defined]
    bad = cli("feeds", "subscribe", "http://127.0.0.1:1", "--feed", "shared", "--public-key",
              str(pem_file), "--credentials", "plain-secret", "--bank", "verified")  # fmt: skip
    assert bad.exit_code == 2 and "credentials" in bad.output  # type: ignore[attr-defined]
    assert cli("feeds", "revoke", "shared", "hotline-b").exit_code == 0
    assert cli("feeds", "unpublish", "shared").exit_code == 0


def test_a_checkpoint_past_the_publishers_log_fetches_everything_again(world: World) -> None:
    """A publisher restored from an older backup answers 'cursor from the future': the
    subscriber's checkpoint is stale, so it fetches the whole feed as a full fetch (the runner
    then withdraws what the feed no longer lists) instead of failing forever."""
    exchange = world.exchange()
    batches = list(exchange.fetch(AmparoCheckpoint(cursor="999999999.0")))
    assert [u.signal for b in batches for u in b.updates] == world.signals
    assert all(b.full for b in batches) and [b.complete for b in batches] == [False, False, True]
    # Interrupted after the first page, it resumes as the same full fetch.
    first = batches[0].checkpoint
    assert isinstance(first, AmparoCheckpoint) and first.full
    rest = list(exchange.fetch(first))
    assert all(b.full for b in rest) and rest[-1].complete
    last = rest[-1].checkpoint
    assert isinstance(last, AmparoCheckpoint) and not last.full
    # Any other refusal is a clear error, not a restart.
    bad = world.exchange()
    bad.settings["feed"] = "internal"
    with pytest.raises(ExchangeError):
        list(bad.fetch(AmparoCheckpoint(cursor="1.1")))
