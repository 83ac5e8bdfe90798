"""Rules, actions and the webhook outbox on SQLite and PostgreSQL.

Cases, evidence and reports belong to other parts; here they are small fakes of what the
actioner needs of them (the ``Protocol``s of ``amparo.actions.engine``) that record how it
called them."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from amparo.actions import Actioner, Deliverer, DeliveryPolicy, Rule, verify_signature
from amparo.app import Amparo
from amparo.config import Settings
from amparo.errors import ConflictError, InputError, NotFoundError
from amparo.events import MatchedContent, Source
from amparo.matching import Match
from amparo.url_policy import UrlPolicy
from clocks import ManualClock

SHA = "cd" * 32
# The receivers below are mock transports; their (invented) host names resolve to a public
# address, as a real receiver's would, so the delivery's address check passes.
PUBLIC_DNS = UrlPolicy(resolver=lambda _host, _port: ["93.184.216.34"])


@dataclass(frozen=True)
class Preserved:
    id: int


@dataclass
class Fakes:
    """Evidence, cases and reports as the actioner sees them: each call recorded."""

    cases: list[dict[str, Any]] = field(default_factory=list)
    preserved: list[dict[str, Any]] = field(default_factory=list)
    drafts: list[dict[str, Any]] = field(default_factory=list)

    def open_or_extend(
        self, content: MatchedContent, *, evidence_id: int | None, rule: str, actor: str
    ) -> int:
        self.cases.append(
            {"sha256": content.sha256, "evidence_id": evidence_id, "rule": rule, "actor": actor}
        )
        return 7

    def preserve(
        self, data: bytes | Path, *, content: MatchedContent, reason: str, actor: str
    ) -> Preserved:
        self.preserved.append({"data": data, "content": content, "reason": reason, "actor": actor})
        return Preserved(id=3)

    def queue_draft(self, case_id: int, *, rule: str, actor: str) -> int:
        self.drafts.append({"case_id": case_id, "rule": rule, "actor": actor})
        return 11


@pytest.fixture
def amparo(settings: Settings) -> Iterator[Amparo]:
    with Amparo(settings) as a:
        yield a


@pytest.fixture
def fakes(amparo: Amparo) -> Fakes:
    f = Fakes()
    amparo.wire(actions=Actioner(amparo.settings, amparo.store, evidence=f, cases=f, reports=f))
    return f


def content(kind: str = "api", bank: str = "known", **source: str) -> MatchedContent:
    match = Match(bank=bank, entry_id=5, signal_type="pdq", distance=8, category="A1")
    return MatchedContent(
        sha256=SHA, matches=(match,), source=Source(kind=kind, **source), md5="ef" * 16, size=10
    )


def add(amparo: Amparo, name: str, actions: list[Any], **kw: Any) -> Rule:
    return amparo.actions.add_rule(
        Rule.from_json({"name": name, "actions": actions, **kw}), actor="t"
    )


def test_rule_changes_are_versioned_audited_and_kept(amparo: Amparo) -> None:
    acts = amparo.actions
    r1 = add(amparo, "known-to-review", ["review"], conditions={"banks": ["known"]})
    assert r1.version == 1 and r1.created_by == "t"
    with pytest.raises(ConflictError):
        add(amparo, "known-to-review", ["review"])
    r2 = acts.set_rule(Rule.from_json({**r1.to_json(), "priority": 5}), actor="u")
    assert (r2.version, r2.priority) == (2, 5)
    assert acts.set_rule(r2, actor="u").version == 2  # unchanged: no new version
    acts.remove_rule("known-to-review", actor="u")
    assert acts.list_rules() == []
    with pytest.raises(NotFoundError):
        acts.get_rule("known-to-review")
    r4 = add(amparo, "known-to-review", ["report"])
    assert r4.version == 4
    history = acts.rule_history("known-to-review")
    assert [(r.version, r.deleted) for r in history] == [
        (1, False),
        (2, False),
        (3, True),
        (4, False),
    ]
    assert acts.get_rule("known-to-review", 1).conditions.banks == ("known",)
    audit = [(e.action, e.target) for e in amparo.audit.entries(10)]
    assert audit[:4] == [
        ("rule.create", "rule:known-to-review"),
        ("rule.delete", "rule:known-to-review"),
        ("rule.update", "rule:known-to-review"),
        ("rule.create", "rule:known-to-review"),
    ]
    with pytest.raises(NotFoundError):
        acts.set_rule(Rule.from_json({"name": "nope", "actions": ["review"]}), actor="t")


def test_a_webhook_rule_needs_an_existing_endpoint(amparo: Amparo) -> None:
    with pytest.raises(InputError, match="platform"):
        add(amparo, "w", [{"type": "webhook", "endpoint": "platform"}])
    amparo.actions.outbox.add_endpoint("platform", "https://example.invalid/x", actor="t")
    assert add(amparo, "w", [{"type": "webhook", "endpoint": "platform"}]).version == 1


def test_no_rules_no_actions_and_new_rules_apply_at_once(amparo: Amparo, fakes: Fakes) -> None:
    assert amparo.actions.handle(content()) == []
    assert not amparo.actions.active()
    add(amparo, "r", ["review"])
    taken = amparo.actions.handle(content(), media=b"bytes", actor="key:m")
    assert [(t.action, t.outcome, t.detail) for t in taken] == [
        ("review", "done", {"case_id": 7, "evidence_id": 3})
    ]
    assert fakes.preserved[0]["data"] == b"bytes"
    assert fakes.preserved[0]["reason"] == "rule:r"
    assert fakes.cases == [{"sha256": SHA, "evidence_id": 3, "rule": "r", "actor": "key:m"}]
    amparo.actions.set_rule(
        Rule.from_json({"name": "r", "actions": ["review"], "enabled": False}), actor="t"
    )
    assert amparo.actions.handle(content()) == []


def test_each_distinct_action_runs_once_per_find(amparo: Amparo, fakes: Fakes) -> None:
    amparo.actions.outbox.add_endpoint("p", "https://example.invalid/x", actor="t")
    hook = {"type": "webhook", "endpoint": "p"}
    add(amparo, "a", ["review", hook], priority=1)
    add(amparo, "b", ["review", "report", hook], priority=2)
    add(amparo, "scans-only", ["report"], conditions={"source_kinds": ["scan"]})
    taken = amparo.actions.handle(content(account_id="acc-1"), media=b"x", actor="t")
    assert [(t.rule, t.action) for t in taken] == [
        ("a", "review"),
        ("a", "webhook"),
        ("b", "report"),
    ]
    assert len(fakes.cases) == 1 and len(fakes.preserved) == 1
    assert fakes.drafts == [{"case_id": 7, "rule": "b", "actor": "t"}]
    # The webhook event sits in the outbox, named by its action record.
    event_id = taken[1].detail["event_id"]
    events = amparo.actions.outbox.events()
    assert [e.event_id for e in events] == [event_id]
    payload = events[0].payload
    assert payload["content"]["sha256"] == SHA and payload["source"] == {
        "kind": "api",
        "account_id": "acc-1",
    }
    assert payload["matches"][0]["bank"] == "known" and payload["rule"] == {
        "name": "a",
        "version": 1,
    }
    log = amparo.actions.log()
    assert [(r.rule, r.action, r.outcome) for r in log] == [
        ("b", "report", "done"),
        ("a", "webhook", "done"),
        ("a", "review", "done"),
    ]
    assert log[1].detail == {"endpoint": "p", "event_id": event_id}
    assert amparo.actions.log(sha256=SHA.upper(), rule="b")[0].action == "report"


class Broken:
    """Evidence, cases and reports that fail with an error nobody expected (a bug)."""

    def open_or_extend(
        self, content: MatchedContent, *, evidence_id: int | None, rule: str, actor: str
    ) -> int:
        raise RuntimeError("broken")

    def preserve(
        self, data: bytes | Path, *, content: MatchedContent, reason: str, actor: str
    ) -> Preserved:
        raise RuntimeError("broken")

    def queue_draft(self, case_id: int, *, rule: str, actor: str) -> int:
        raise RuntimeError("broken")


def test_an_action_that_breaks_is_recorded_as_failed_and_the_others_still_run(
    amparo: Amparo,
) -> None:
    broken = Broken()
    amparo.wire(
        actions=Actioner(
            amparo.settings, amparo.store, evidence=broken, cases=broken, reports=broken
        )
    )
    add(amparo, "r", ["review", "report", {"type": "quarantine"}])
    taken = amparo.actions.handle(content(), media=b"x")
    assert [(t.action, t.outcome) for t in taken] == [
        ("review", "failed"),
        ("report", "failed"),
        ("quarantine", "failed"),
    ]
    assert all(t.error == "unexpected error: RuntimeError('broken')" for t in taken)
    assert [r.outcome for r in amparo.actions.log()] == ["failed"] * 3


def test_quarantine(amparo: Amparo, fakes: Fakes, tmp_path: Path) -> None:
    add(amparo, "copy", [{"type": "quarantine"}])
    taken = amparo.actions.handle(content(), media=None)
    assert (taken[0].outcome, taken[0].error) == (
        "skipped",
        "no media to preserve (a lookup by hashes)",
    )
    amparo.actions.remove_rule("copy", actor="t")

    add(amparo, "move", [{"type": "quarantine", "mode": "move"}])
    scanned = tmp_path / "scan" / "a.jpg"
    scanned.parent.mkdir()
    scanned.write_bytes(b"matched")
    sha = hashlib.sha256(b"matched").hexdigest()
    find = MatchedContent(
        sha256=sha, matches=content().matches, source=Source(kind="scan", path=str(scanned))
    )
    # Not configured: refused, the file stays.
    taken = amparo.actions.handle(find, media=scanned)
    assert taken[0].outcome == "failed"
    assert taken[0].error == "quarantine in move mode needs a quarantine folder"
    assert scanned.exists()
    # Not a scan: nothing is moved.
    api_find = MatchedContent(sha256=sha, matches=content().matches)
    assert amparo.actions.handle(api_find, media=scanned)[0].outcome == "skipped"
    # Configured: moved under the quarantine folder, and recorded.
    qdir = tmp_path / "quarantine"
    with Amparo(replace(amparo.settings, quarantine_dir=str(qdir))) as configured:
        configured.wire(
            actions=Actioner(
                configured.settings, configured.store, evidence=fakes, cases=fakes, reports=fakes
            )
        )
        taken = configured.actions.handle(find, media=scanned)
    assert taken[0].outcome == "done", taken[0].error
    moved = Path(taken[0].detail["moved_to"])
    assert not scanned.exists() and moved.read_bytes() == b"matched"
    assert qdir.resolve() in moved.parents and moved.name == f"{sha}-a.jpg"
    assert amparo.actions.log()[0].detail["moved_from"] == str(scanned)


# -- the outbox -------------------------------------------------------------------------------


def test_a_replayed_scan_find_queues_its_webhook_event_once(amparo: Amparo, fakes: Fakes) -> None:
    """A resumed scan acting on the same file again yields the same event id (idempotency
    key) and no second outbox event; another scan of it is a new event."""
    amparo.actions.outbox.add_endpoint("p", "https://example.invalid/x", actor="t")
    add(amparo, "hook", [{"type": "webhook", "endpoint": "p"}])
    find = content("scan", scan_id="scan-1", path="/mnt/a.jpg")
    first = amparo.actions.handle(find, actor="t")[0].detail["event_id"]
    again = amparo.actions.handle(find, actor="t")[0].detail["event_id"]
    assert first == again
    assert [e.event_id for e in amparo.actions.outbox.events()] == [first]
    other = amparo.actions.handle(content("scan", scan_id="scan-2", path="/mnt/a.jpg"))
    assert other[0].detail["event_id"] != first
    assert len(amparo.actions.outbox.events()) == 2


def _event(amparo: Amparo, endpoint: str = "p") -> str:
    add(amparo, f"hook-{time.monotonic_ns()}", [{"type": "webhook", "endpoint": endpoint}])
    taken = amparo.actions.handle(content())
    amparo.actions.remove_rule(taken[0].rule, actor="t")
    event_id: str = taken[0].detail["event_id"]
    return event_id


def test_claims_are_leased_and_expire(amparo: Amparo) -> None:
    outbox = amparo.actions.outbox
    outbox.add_endpoint("p", "https://example.invalid/x", actor="t")
    ids = {_event(amparo), _event(amparo)}
    clock = ManualClock()  # after the events: they are due at its start
    first = outbox.claim(limit=10, lease_seconds=30, now=clock())
    assert {e.event_id for e in first} == ids and all(e.attempts == 1 for e in first)
    # Held by the first deliverer for its lease ...
    assert outbox.claim(limit=10, lease_seconds=30, now=clock.advance(29)) == []
    # ... which died: the lease runs out and another deliverer claims them.
    again = outbox.claim(limit=10, lease_seconds=30, now=clock.advance(2))
    assert {e.event_id for e in again} == ids and all(e.attempts == 2 for e in again)
    # The first deliverer's late failure does not undo the second's claim.
    outbox.mark_failed(first[0], status=500, error="late", retry_at=None)
    assert outbox.get_event(first[0].event_id).state == "pending"
    outbox.mark_delivered(again[0], 200, now=clock())
    assert outbox.get_event(again[0].id).state == "delivered"


def test_disabled_and_removed_endpoints(amparo: Amparo) -> None:
    outbox = amparo.actions.outbox
    new = outbox.add_endpoint("p", "https://example.invalid/x", actor="t")
    assert new.secret.startswith("whsec_") and len(new.secret) > 40
    with pytest.raises(ConflictError):
        outbox.add_endpoint("p", "https://example.invalid/y", actor="t")
    with pytest.raises(InputError):
        outbox.add_endpoint("q", "ftp://example.invalid/", actor="t")
    event_id = _event(amparo)
    outbox.update_endpoint("p", enabled=False, actor="t")
    assert outbox.claim(limit=10, lease_seconds=5) == []  # waits while disabled
    outbox.update_endpoint("p", enabled=True, actor="t")
    assert [e.event_id for e in outbox.claim(limit=10, lease_seconds=0.01)] == [event_id]
    assert outbox.remove_endpoint("p", actor="t") == 1
    assert outbox.get_event(event_id).state == "dead"
    assert outbox.get_event(event_id).last_error == "endpoint removed"
    assert [e.name for e in outbox.list_endpoints()] == []
    for ref in ("9" * 30, "\u00b2"):  # past a 64-bit id; a digit int() refuses
        with pytest.raises(NotFoundError):
            outbox.get_event(ref)


def test_deliverer_signs_retries_with_backoff_and_gives_up(amparo: Amparo) -> None:
    outbox = amparo.actions.outbox
    secret = outbox.add_endpoint("p", "https://platform.invalid/hook", actor="t").secret
    event_id = _event(amparo)
    answers = [503, 500, 204]
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(answers.pop(0))

    clock = ManualClock()
    policy = DeliveryPolicy(max_attempts=3, backoff_seconds=60, backoff_max_seconds=120)
    deliverer = Deliverer(
        outbox,
        policy,
        urls=PUBLIC_DNS,
        transport=httpx.MockTransport(receiver),
        clock=clock,
        rng=random.Random(7),
    )
    expected = random.Random(7)  # the same jitter, drawn in the same order
    assert [r.status for r in deliverer.run_once()] == [503]
    event = outbox.get_event(event_id)
    assert (event.state, event.attempts, event.last_status) == ("pending", 1, 503)
    wait = policy.backoff(1, expected)
    assert 30 <= wait <= 60  # doubling from 60 s, jittered to 50-100%
    clock.advance(wait - 1)
    assert deliverer.run_once() == []  # not due yet: backing off
    clock.advance(1)
    assert [r.status for r in deliverer.run_once()] == [500]
    clock.advance(policy.backoff(2, expected))
    assert [r.delivered for r in deliverer.run_once()] == [True]
    assert outbox.get_event(event_id).state == "delivered"
    bodies = {r.content for r in seen}
    assert len(bodies) == 1  # the same bytes every attempt
    for r in seen:
        assert r.headers["Idempotency-Key"] == r.headers["X-Amparo-Event-Id"] == event_id
        assert verify_signature(secret, r.content, r.headers["X-Amparo-Signature"])
        assert r.headers["Content-Type"] == "application/json"
        assert json.loads(r.content)["event_id"] == event_id

    # An event that keeps failing is dead after max_attempts; retry revives it.
    dead_id = _event(amparo)
    failing = Deliverer(
        outbox,
        DeliveryPolicy(max_attempts=2, backoff_seconds=10, backoff_max_seconds=10),
        urls=PUBLIC_DNS,
        transport=httpx.MockTransport(lambda _r: httpx.Response(500)),
        clock=clock,
    )
    failing.run_once()
    clock.advance(10)
    failing.run_once()
    assert outbox.get_event(dead_id).state == "dead"
    assert outbox.counts() == {"pending": 0, "delivered": 1, "dead": 1}
    revived = outbox.retry(dead_id, actor="t")
    assert (revived.state, revived.attempts) == ("pending", 0)
    assert amparo.audit.entries(1)[0].action == "webhook.retry"


@pytest.mark.parametrize("url", ["http://[::1", "ftp://example.org/x", "example.org/x"])
def test_a_webhook_url_that_is_not_http_is_a_clear_error(amparo: Amparo, url: str) -> None:
    with pytest.raises(InputError, match="not an http"):
        amparo.actions.outbox.add_endpoint("bad", url, actor="t")


def test_the_outbox_name_is_reserved_for_the_outbox(amparo: Amparo) -> None:
    # GET /v1/webhooks/outbox lists events: an endpoint called "outbox" could not be read.
    with pytest.raises(InputError, match="reserved"):
        amparo.actions.outbox.add_endpoint("outbox", "https://example.invalid/x", actor="t")
    assert amparo.actions.outbox.list_endpoints() == []


def test_an_endpoint_removed_between_check_and_record_leaves_no_pending_event(
    amparo: Amparo,
) -> None:
    """Issue #12 point 17: the find's rule check saw the endpoint, then it was removed before
    the action was recorded; the event must not stay pending forever."""
    outbox = amparo.actions.outbox
    outbox.add_endpoint("p", "https://example.invalid/x", actor="t")
    add(amparo, "hook", [{"type": "webhook", "endpoint": "p"}])
    log = amparo.actions.taken
    real = log.record

    def racing(**kw: Any) -> int:
        outbox.remove_endpoint("p", actor="t")  # lands between the check and the record
        return real(**kw)

    log.record = racing  # type: ignore[method-assign]
    taken = amparo.actions.handle(content())
    log.record = real  # type: ignore[method-assign]
    event = outbox.get_event(taken[0].detail["event_id"])
    assert event.state == "dead" and event.last_error == "endpoint removed"
    assert outbox.events(state="pending") == []


def test_webhook_secrets_are_encrypted_at_rest(settings: Settings) -> None:
    """Issue #12 point 6: the signing secret is sealed with the evidence keyring: not in the
    database in clear, still recoverable to sign, and rows written in clear by an older
    version are sealed when the installation next opens."""
    from sqlalchemy import text

    secret = "whsec_synthetic-secret-0123456789"
    with Amparo(settings) as app:
        app.actions.outbox.add_endpoint(
            "hook", "https://platform.example/in", actor="t", secret=secret
        )
        assert app.actions.outbox.endpoint_secret("hook")[1] == secret
        with app.store.engine.connect() as conn:
            stored = conn.execute(text("SELECT secret FROM webhook_endpoints")).scalar_one()
            assert stored.startswith("enc1:") and secret not in stored
            # As an older version wrote it:
            conn.execute(text("UPDATE webhook_endpoints SET secret = 'plain-legacy-secret-1234'"))
            conn.commit()
        rotated = app.actions.outbox.update_endpoint("hook", actor="t", rotate_secret=True)
        new_secret = rotated.secret  # type: ignore[union-attr]
    if settings.resolved_database_url.startswith("sqlite"):
        db = Path(settings.resolved_database_url.split("///", 1)[1])
        blob = db.read_bytes() + (
            Path(f"{db}-wal").read_bytes() if Path(f"{db}-wal").exists() else b""
        )
        assert new_secret.encode() not in blob
    with Amparo(settings) as app:
        assert app.actions.outbox.endpoint_secret("hook")[1] == new_secret
        with app.store.engine.begin() as conn:
            conn.execute(text("UPDATE webhook_endpoints SET secret = 'plain-legacy-secret-1234'"))
    with Amparo(settings) as app:  # opening seals what an older version left in clear
        with app.store.engine.connect() as conn:
            stored = conn.execute(text("SELECT secret FROM webhook_endpoints")).scalar_one()
        assert stored.startswith("enc1:")
        assert app.actions.outbox.endpoint_secret("hook")[1] == "plain-legacy-secret-1234"
        report = app.evidence.rotate_key(actor="t", retire=True)
        assert report.retired and not report.still_used
        assert app.actions.outbox.endpoint_secret("hook")[1] == "plain-legacy-secret-1234"


def test_a_lookup_that_matches_nothing_keeps_the_rule_cache_fresh(amparo: Amparo) -> None:
    """HMA's fast lane answers on the event loop only when the cached rule set says no rule
    is enabled; every lookup keeps that cache fresh, matched or not (else every lookup would
    take the thread pool)."""
    assert amparo.actions.known_active() is None  # nothing read yet
    amparo.checks.check_signals([("md5", "0" * 32)], source=Source(), actor="t")
    assert amparo.actions.known_active() is False
    assert amparo.checks.rules_known_inactive()
    add(amparo, "r", [{"type": "review"}])
    assert amparo.actions.known_active() is None  # a rule changed: due for a re-read
    amparo.checks.check_signals([("md5", "0" * 32)], source=Source(), actor="t")
    assert amparo.actions.known_active() is True
