"""Webhook events: their JSON body, their signature, and the deliverer that sends the outbox.

Each event is POSTed as JSON with these headers::

    Content-Type: application/json
    X-Amparo-Event-Id: <uuid>            the event's id, the same on every attempt
    Idempotency-Key: <uuid>              the same id, under the header name many stacks know
    X-Amparo-Timestamp: <unix seconds>   when this attempt was sent
    X-Amparo-Signature: sha256=<hex>     HMAC-SHA256 of the exact body, keyed by the secret

A receiver checks the signature with :func:`verify_signature` (or the few lines of it shown in
``docs/actions.md``), answers 2xx once it has stored the event, and ignores an event id it has
already seen: delivery is at least once, and deduping on the id makes the effect exactly once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple

import httpx

from amparo.actions.outbox import ClaimedEvent, new_event_id, validate_url
from amparo.clock import Clock, utc_now
from amparo.config import DEFAULTS, Settings
from amparo.errors import ConfigError, FetchError, UrlRefusedError
from amparo.events import MatchedContent
from amparo.fetch import pinned_request, run_with_deadline, tls_context
from amparo.store.webhooks import Outbox
from amparo.url_policy import UrlPolicy

log = logging.getLogger("amparo.webhooks")

SIGNATURE_HEADER = "X-Amparo-Signature"
EVENT_ID_HEADER = "X-Amparo-Event-Id"
TIMESTAMP_HEADER = "X-Amparo-Timestamp"
EVENT_VERSION = 1
USER_AGENT = "Amparo-Webhooks/1"


def sign(secret: str, body: bytes) -> str:
    """The ``X-Amparo-Signature`` value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` (the ``X-Amparo-Signature`` value) signs ``body`` with ``secret``.

    Compare the raw request body, before any JSON parsing; the comparison takes constant time.
    """
    if not header or not header.startswith("sha256="):
        return False
    # As bytes: compare_digest raises TypeError on a str that is not ASCII, and the header is
    # whatever the sender put there.
    return hmac.compare_digest(
        sign(secret, body).encode(), header.strip().encode("utf-8", "surrogatepass")
    )


def event_payload(
    content: MatchedContent,
    *,
    rule: str,
    rule_version: int,
    event_id: str,
    kind: str = "match",
) -> dict[str, Any]:
    """The event body for one find: hashes, matches and source ids, never media."""
    return {
        "version": EVENT_VERSION,
        "type": kind,
        "event_id": event_id,
        "created_at": utc_now().isoformat(),
        "rule": {"name": rule, "version": rule_version},
        "content": {
            "sha256": content.sha256,
            "md5": content.md5,
            "size": content.size,
            "media_kind": content.media_kind,
            "mime": content.mime,
            "seen_at": content.at.isoformat(),
        },
        "source": content.source.as_dict(),
        "matches": [
            {
                "bank": m.bank,
                "entry_id": m.entry_id,
                "signal_type": m.signal_type,
                "distance": m.distance,
                "category": m.category,
                "tags": list(m.tags),
                "path": m.path,
                **({"variant": m.variant} if m.variant is not None else {}),
                **({"transform": m.transform} if m.transform is not None else {}),
            }
            for m in content.matches
        ],
    }


def encode(payload: dict[str, Any]) -> str:
    """The exact text stored and sent (compact, keys sorted: the same bytes every attempt)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def ping_payload() -> dict[str, Any]:
    """A ``type: test`` event (``amparo webhooks test``): no content, no matches."""
    event_id = new_event_id()
    return {
        "version": EVENT_VERSION,
        "type": "test",
        "event_id": event_id,
        "created_at": utc_now().isoformat(),
    }


@dataclass(frozen=True)
class DeliveryPolicy:
    """How webhook events are delivered; the defaults are the ``webhook_*`` settings'."""

    timeout_seconds: float = DEFAULTS.webhook_timeout_seconds
    max_attempts: int = DEFAULTS.webhook_max_attempts
    backoff_seconds: float = DEFAULTS.webhook_backoff_seconds
    backoff_max_seconds: float = DEFAULTS.webhook_backoff_max_seconds
    lease_seconds: float = DEFAULTS.webhook_lease_seconds
    poll_seconds: float = DEFAULTS.webhook_poll_seconds
    batch: int = 20

    @classmethod
    def from_settings(cls, s: Settings) -> DeliveryPolicy:
        policy = cls(
            timeout_seconds=s.webhook_timeout_seconds,
            max_attempts=s.webhook_max_attempts,
            backoff_seconds=s.webhook_backoff_seconds,
            backoff_max_seconds=s.webhook_backoff_max_seconds,
            lease_seconds=s.webhook_lease_seconds,
            poll_seconds=s.webhook_poll_seconds,
        )
        for name in ("timeout_seconds", "backoff_seconds", "lease_seconds", "poll_seconds"):
            if getattr(policy, name) <= 0:
                raise ConfigError(f"webhook_{name} must be more than 0")
        if policy.max_attempts < 1:
            raise ConfigError("webhook_max_attempts must be 1 or more")
        if policy.backoff_max_seconds < policy.backoff_seconds:
            raise ConfigError(
                "webhook_backoff_max_seconds must be at least webhook_backoff_seconds"
            )
        return policy

    @property
    def claim_batch(self) -> int:
        """Events claimed at once: as many as can be sent, one after another, within a lease
        (so a slow receiver cannot make a batch outlive its lease)."""
        return max(1, min(self.batch, int(self.lease_seconds // self.timeout_seconds)))

    def backoff(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after ``attempts`` failed attempts: doubling, capped, and jittered
        to 50-100% so that many events failing together do not retry together."""
        base = min(self.backoff_max_seconds, self.backoff_seconds * 2.0 ** max(0, attempts - 1))
        jitter = rng.random() if rng is not None else random.random()
        return base * (0.5 + 0.5 * jitter)


@dataclass(frozen=True)
class DeliveryResult:
    event_id: str
    delivered: bool
    status: int | None
    error: str | None


def event_headers(
    secret: str, event_id: str, body: bytes, *, sent_at: datetime | None = None
) -> dict[str, str]:
    """The headers of one signed attempt (``sent_at``: when it is sent, default now)."""
    sent_at = sent_at or utc_now()
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_ID_HEADER: event_id,
        "Idempotency-Key": event_id,
        TIMESTAMP_HEADER: str(int(sent_at.timestamp())),
        SIGNATURE_HEADER: sign(secret, body),
    }


def check_endpoint_url(url: str, urls: UrlPolicy) -> None:
    """Refuse, when an endpoint is added or changed, a URL the address policy will refuse.

    A host name that does not resolve yet is accepted (its addresses are checked again at
    every delivery, after the lookup, since DNS may change); one that resolves to a private,
    loopback or link-local address is refused, like such an address written out.
    """
    validate_url(url)
    try:
        urls.check(url)
    except UrlRefusedError as exc:
        raise UrlRefusedError(
            f"webhook URL refused: {exc.message}",
            hint="webhooks reach only public addresses; an admin can allow a receiver on the "
            "private network with the url_allowlist setting",
        ) from None
    except FetchError:
        pass  # not resolvable now: checked at delivery


class Deliverer:
    """Sends due outbox events; run :meth:`run_once` in a loop, or :meth:`run_forever`.

    Every POST goes to an address checked by ``urls`` (the same policy as ``url=`` fetches:
    looked up, checked, connected to by that address) and ends within
    ``policy.timeout_seconds`` in total, however slowly the receiver answers.

    ``clock`` is the wall time that decides retries (when a failed event is due again, a
    ``Retry-After`` date) and stamps each attempt; ``rng`` jitters the backoff. Tests pass a
    clock they move and a seeded ``random.Random`` instead of sleeping through backoffs.
    """

    def __init__(
        self,
        outbox: Outbox,
        policy: DeliveryPolicy,
        *,
        urls: UrlPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.outbox = outbox
        self.policy = policy
        self.urls = urls or UrlPolicy()
        self.transport = transport
        self.clock = clock
        self.rng = rng

    @classmethod
    def from_settings(
        cls, outbox: Outbox, settings: Settings, *, urls: UrlPolicy | None = None
    ) -> Deliverer:
        return cls(
            outbox,
            DeliveryPolicy.from_settings(settings),
            urls=urls or UrlPolicy.from_settings(settings),
        )

    def close(self) -> None:
        """Nothing is held between deliveries (each opens and closes its connection)."""

    def post(self, url: str, secret: str, event_id: str, body: bytes) -> httpx.Response:
        """POST one signed event (the response's body is not read).

        Raises :class:`UrlRefusedError` when the address policy refuses the URL (nothing is
        sent), :class:`FetchError` past the deadline, ``httpx.HTTPError`` when sending fails.
        """

        async def send() -> httpx.Response:
            target = await self.urls.check_async(url)
            async with httpx.AsyncClient(
                transport=self.transport,
                verify=tls_context(),
                follow_redirects=False,
                trust_env=False,
                timeout=self.policy.timeout_seconds,
            ) as client:
                headers = event_headers(secret, event_id, body, sent_at=self.clock())
                request = pinned_request(client, "POST", url, target, headers, body)
                response = await client.send(request, stream=True)
                await response.aclose()
                return response

        return run_with_deadline(self.policy.timeout_seconds, "delivering the event", send)

    def _attempt(self, url: str, secret: str, event_id: str, body: bytes) -> _Attempt:
        try:
            response = self.post(url, secret, event_id, body)
        except UrlRefusedError as exc:
            return _Attempt(None, f"refused by policy: {exc.message}", None)
        except FetchError as exc:
            return _Attempt(None, exc.message, None)
        except httpx.HTTPError as exc:
            return _Attempt(
                None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, None
            )
        status = response.status_code
        if 200 <= status < 300:
            return _Attempt(status, None, None)
        retry_after = _retry_after(response.headers.get("retry-after"), self.clock())
        return _Attempt(status, f"HTTP {status}", retry_after)

    def run_once(self) -> list[DeliveryResult]:
        """Claim the due events (up to one batch) and try each once."""
        claimed = self.outbox.claim(
            limit=self.policy.claim_batch, lease_seconds=self.policy.lease_seconds, now=self.clock()
        )
        return [self.deliver(event) for event in claimed]

    def deliver(self, event: ClaimedEvent) -> DeliveryResult:
        status, error, retry_after = self._attempt(
            event.url, event.secret, event.event_id, event.body
        )
        if error is None and status is not None:
            self.outbox.mark_delivered(event, status, now=self.clock())
            log.info("webhook %s delivered to %s (%s)", event.event_id, event.endpoint, status)
            return DeliveryResult(event.event_id, True, status, None)
        error = error or f"HTTP {status}"
        retry_at: datetime | None = None
        if event.attempts < self.policy.max_attempts:
            wait = self.policy.backoff(event.attempts, self.rng)
            if retry_after is not None:
                wait = min(self.policy.backoff_max_seconds, max(wait, retry_after))
            retry_at = self.clock() + timedelta(seconds=wait)
        self.outbox.mark_failed(event, status=status, error=error, retry_at=retry_at)
        log.warning(
            "webhook %s to %s failed (attempt %d): %s%s",
            event.event_id,
            event.endpoint,
            event.attempts,
            error,
            "" if retry_at else "; giving up (dead)",
        )
        return DeliveryResult(event.event_id, False, status, error)

    def run_forever(
        self,
        stop: threading.Event | None = None,
        on_result: Callable[[DeliveryResult], None] | None = None,
    ) -> None:
        """Deliver until ``stop`` is set (or forever), sleeping ``poll_seconds`` when idle."""
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                results = self.run_once()
            except Exception:
                log.exception("webhook delivery failed; trying again shortly")
                results = []
            for result in results:
                if on_result is not None:
                    on_result(result)
            if not results:
                stop.wait(self.policy.poll_seconds)

    def send_test(self, endpoint: str) -> DeliveryResult:
        """Send a signed ``type: test`` event to an endpoint now (not through the outbox)."""
        url, secret = self.outbox.endpoint_secret(endpoint)
        payload = ping_payload()
        body = encode(payload).encode()
        # A refused URL is reported without connecting: /test is no probe of internal hosts.
        status, error, _ = self._attempt(url, secret, payload["event_id"], body)
        return DeliveryResult(payload["event_id"], error is None, status, error)


class _Attempt(NamedTuple):
    status: int | None
    error: str | None
    retry_after: float | None


async def deliver_in_background(outbox: Outbox, settings: Settings) -> None:
    """The task ``amparo serve`` runs: deliver due events, in a worker thread, until cancelled."""
    from fastapi.concurrency import run_in_threadpool

    try:
        deliverer = Deliverer.from_settings(outbox, settings)
    except ConfigError as exc:
        log.error("webhooks are not delivered: %s", exc)
        return
    try:
        while True:
            try:
                results = await run_in_threadpool(deliverer.run_once)
            except Exception:
                log.exception("webhook delivery failed; trying again shortly")
                results = []
            if not results:
                await asyncio.sleep(deliverer.policy.poll_seconds)
    finally:
        deliverer.close()


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for (seconds, or an HTTP date after ``now``)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None
