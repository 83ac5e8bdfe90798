"""The webhook outbox survives an outage and a crash: the receiver is down at first, the
deliverer process is killed (SIGKILL) while a POST is in flight, a new deliverer takes over,
and every event arrives, signed, and is accepted exactly once after deduping on its id."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from amparo.actions import Deliverer, Rule, verify_signature
from amparo.app import Amparo
from amparo.config import load_settings
from amparo.events import MatchedContent, Source
from amparo.matching import Match
from amparo.url_policy import UrlPolicy
from slow_server import Trickler


class Receiver:
    """A platform's webhook receiver: checks signatures and dedupes on the Idempotency-Key,
    as docs/actions.md tells integrators to. ``delay`` holds each answer back."""

    def __init__(self, port: int, secret: str, delay: float = 0.0) -> None:
        self.secret = secret
        self.delay = delay
        self.lock = threading.Lock()
        self.received: list[str] = []
        self.accepted: set[str] = set()
        self.bad_signatures = 0
        self.in_flight: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers["Idempotency-Key"]
                ok = verify_signature(receiver.secret, body, self.headers["X-Amparo-Signature"])
                ok = ok and json.loads(body)["event_id"] == key
                with receiver.lock:
                    receiver.received.append(key)
                    receiver.bad_signatures += not ok
                    receiver.in_flight.add(key)
                    if ok:
                        receiver.accepted.add(key)  # a repeat is a no-op: exactly-once effect
                time.sleep(receiver.delay)  # a slow receiver: the POST stays in flight
                with receiver.lock:
                    receiver.in_flight.discard(key)
                try:
                    self.send_response(200 if ok else 401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the deliverer died while we waited

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll for what real processes and sockets do (a deliverer subprocess, the receiver):
    their time cannot be moved by the test."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def enqueue_events(amparo: Amparo, n: int) -> list[str]:
    """N finds through a webhook rule: N events in the outbox."""
    amparo.actions.add_rule(
        Rule.from_json({"name": "hook", "actions": [{"type": "webhook", "endpoint": "platform"}]}),
        actor="test",
    )
    ids = []
    for i in range(n):
        match = Match(bank="known", entry_id=i + 1, signal_type="md5", distance=0, category="A1")
        content = MatchedContent(
            sha256=f"{i:064x}", matches=(match,), source=Source(kind="api", upload_id=f"u{i}")
        )
        ids.append(amparo.actions.handle(content)[0].detail["event_id"])
    return ids


@pytest.mark.slow
def test_outage_and_crash_lose_no_event_and_deliver_each_once(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AMPARO_HOME": str(tmp_path / "home"),
        "AMPARO_WEBHOOK_BACKOFF_SECONDS": "0.1",
        "AMPARO_WEBHOOK_BACKOFF_MAX_SECONDS": "0.3",
        "AMPARO_WEBHOOK_TIMEOUT_SECONDS": "1",
        "AMPARO_WEBHOOK_LEASE_SECONDS": "1.5",
        "AMPARO_WEBHOOK_POLL_SECONDS": "0.05",
        "AMPARO_WEBHOOK_MAX_ATTEMPTS": "1000",
        "AMPARO_URL_ALLOWLIST": "127.0.0.1",  # the receiver is on loopback
    }
    settings = load_settings(env=env)
    port = free_port()
    with Amparo(settings) as amparo:
        secret = amparo.actions.outbox.add_endpoint(
            "platform", f"http://127.0.0.1:{port}/amparo", actor="test"
        ).secret
        enqueued = enqueue_events(amparo, 8)
        outbox = amparo.actions.outbox

        command = [sys.executable, "-m", "amparo.cli.main", "webhooks", "deliver"]

        def deliverer() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

        first = deliverer()
        try:
            # The receiver is down: attempts fail and are retried with backoff.
            wait_for(lambda: any(e.attempts >= 2 for e in outbox.events()), 15, "failed attempts")
            assert all(e.state == "pending" for e in outbox.events())
            with Receiver(port, secret, delay=0.3) as receiver:
                # Kill the deliverer while a POST is in flight (after some got through).
                wait_for(
                    lambda: len(receiver.accepted) >= 3 and bool(receiver.in_flight),
                    15,
                    "deliveries to start",
                )
                first.send_signal(signal.SIGKILL)
                first.wait(5)
                with receiver.lock:
                    killed_mid_send = set(receiver.in_flight)
                assert killed_mid_send

                second = deliverer()
                try:
                    wait_for(
                        lambda: outbox.counts()["delivered"] == len(enqueued), 20, "all delivered"
                    )
                finally:
                    second.send_signal(signal.SIGTERM)
                    second.wait(5)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()

        assert receiver.accepted == set(enqueued)
        assert receiver.bad_signatures == 0
        counts = Counter(receiver.received)
        assert set(counts) == set(enqueued)
        # The event in flight at the kill was sent again after its lease ran out: the receiver
        # saw it twice and accepted it once.
        assert all(counts[event_id] >= 2 for event_id in killed_mid_send)
        assert outbox.counts() == {"pending": 0, "delivered": len(enqueued), "dead": 0}


def test_a_refused_event_stays_pending_with_the_reason(tmp_path: Path) -> None:
    """A receiver that refuses the signature (a wrong secret) keeps the event pending."""
    settings = load_settings(
        env={}, overrides={"home": tmp_path / "home", "url_allowlist": "127.0.0.1"}
    )
    port = free_port()
    with Amparo(settings) as amparo:
        amparo.actions.outbox.add_endpoint("platform", f"http://127.0.0.1:{port}/", actor="t")
        enqueue_events(amparo, 1)
        with Receiver(port, "not-the-secret-at-all"):
            deliverer = Deliverer.from_settings(amparo.actions.outbox, amparo.settings)
            try:
                result = deliverer.run_once()[0]
            finally:
                deliverer.close()
        assert not result.delivered
        event = amparo.actions.outbox.events()[0]
        assert (event.state, event.last_status) == ("pending", 401)


def test_delivery_to_a_trickling_receiver_ends_at_its_deadline(tmp_path: Path) -> None:
    """A receiver that sends its answer's headers a byte at a time never trips a per-read
    timeout; the attempt still ends at webhook_timeout_seconds, and is retried later."""
    settings = load_settings(
        env={},
        overrides={
            "home": tmp_path / "home",
            "url_allowlist": "127.0.0.1",
            "webhook_timeout_seconds": 1.0,
        },
    )
    with Trickler(interval=0.2, max_seconds=10) as slow, Amparo(settings) as amparo:
        amparo.actions.outbox.add_endpoint("platform", slow.url + "/hook", actor="t")
        enqueue_events(amparo, 1)
        deliverer = Deliverer.from_settings(amparo.actions.outbox, amparo.settings)
        start = time.monotonic()
        result = deliverer.run_once()[0]
        delivery_took = time.monotonic() - start
        start = time.monotonic()
        test = deliverer.send_test("platform")
        test_took = time.monotonic() - start
        event = amparo.actions.outbox.events()[0]
    assert not result.delivered and result.error and "longer than 1 s" in result.error
    assert delivery_took < 2.5
    assert not test.delivered and test.error and "longer than 1 s" in test.error
    assert test_took < 2.5
    assert event.state == "pending" and "longer than 1 s" in (event.last_error or "")


def test_delivery_checks_the_address_after_every_lookup(tmp_path: Path) -> None:
    """An endpoint's name that now resolves to an internal address is refused at delivery,
    without connecting, and the event stays pending with the reason."""
    settings = load_settings(env={}, overrides={"home": tmp_path / "home"})
    port = free_port()
    with Amparo(settings) as amparo, Receiver(port, "whatever") as receiver:
        amparo.actions.outbox.add_endpoint("platform", f"http://hooks.test:{port}/", actor="t")
        enqueue_events(amparo, 1)
        urls = UrlPolicy(resolver=lambda _host, _port: ["127.0.0.1"])
        deliverer = Deliverer.from_settings(amparo.actions.outbox, amparo.settings, urls=urls)
        result = deliverer.run_once()[0]
        event = amparo.actions.outbox.events()[0]
    assert not result.delivered and result.status is None
    assert (result.error or "").startswith("refused by policy")
    assert event.state == "pending" and (event.last_error or "").startswith("refused by policy")
    assert receiver.received == []
