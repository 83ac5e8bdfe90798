"""Collaborations and their fetches: the exchanges context's use cases.

Storage in :mod:`amparo.store.exchanges` (and the generic leases of
:mod:`amparo.store.leases`), the fetch loop in :mod:`amparo.exchanges.runner`. Shells
(``amparo exchange``, ``/v1/exchanges``, the serve background loop) call only this service.

Opinions: the composition root registers :meth:`ExchangeService.record_decision` with the
review's ``on_decision``; a confirm or false positive on an item that matched an entry a
collaboration brought in queues one opinion per source record in the outbox
(``exchange_opinions``), and :meth:`deliver_opinions` sends them, retrying with backoff.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from amparo.banks.model import BankInfo
from amparo.banks.service import BankService
from amparo.clock import Clock, utc_now
from amparo.config import SYSTEM_ACTOR, Settings
from amparo.errors import AmparoError, BankNotFoundError, ConflictError, InputError
from amparo.exchanges.base import Exchange, exchange_type
from amparo.exchanges.checking import checked_settings
from amparo.exchanges.credentials import check_reference
from amparo.exchanges.http import RetryingClient
from amparo.exchanges.model import (
    Collaboration,
    CollaborationStatus,
    FetchResult,
    Opinion,
    QuarantinedItem,
)
from amparo.exchanges.runner import FetchRunner, lease_name
from amparo.names import validate_name
from amparo.review.model import CaseItem, Decision
from amparo.store import Store
from amparo.store.exchanges import CollaborationState, ExchangeRepository
from amparo.store.leases import LeaseRepository, default_holder
from amparo.url_policy import UrlPolicy

log = logging.getLogger("amparo.exchanges")

VERDICTS = {"confirm": "true_positive", "false_positive": "false_positive"}
"""Decision kind -> the opinion it sends (``escalate`` sends none)."""
OPINION_MAX_ATTEMPTS = 10
OPINION_BACKOFF_SECONDS = 60.0
OPINION_BACKOFF_MAX_SECONDS = 6 * 3600.0
OPINION_CLAIM_SECONDS = 300.0
"""How long a claimed opinion is held by its deliverer before another may try it."""
_CHANGEABLE = ("settings", "credentials", "interval_seconds", "feedback")


class ExchangeService:
    """Add, change, fetch and report on collaborations; queue and send reviewers' opinions."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        banks: BankService,
        *,
        clock: Clock = utc_now,
        organisation: Callable[[], str] | None = None,
        http_factory: Callable[[], RetryingClient] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.banks = banks
        self.clock = clock
        self.organisation: Callable[[], str] = organisation or (
            lambda: self.settings.organisation_id
        )
        self.http_factory: Callable[[], RetryingClient] = http_factory or self._default_http
        self.records = ExchangeRepository(store.db)
        self.leases = LeaseRepository(store.db, clock=clock)
        self.runner = FetchRunner(
            settings,
            store,
            self.records,
            self.leases,
            clock=clock,
            organisation=lambda: self.organisation(),
            http_factory=lambda: self.http_factory(),
        )
        self._after_fetch: list[Callable[[FetchResult], None]] = []

    def _default_http(self) -> RetryingClient:
        return RetryingClient(
            timeout=self.settings.exchange_http_timeout_seconds,
            attempts=self.settings.exchange_http_attempts,
            backoff=self.settings.exchange_backoff_seconds,
            policy=UrlPolicy.from_settings(self.settings),
            max_bytes=self.settings.exchange_max_list_bytes,
        )

    def after_fetch(self, callback: Callable[[FetchResult], None]) -> None:
        """Run ``callback`` after each fetch that changed entries (retroactive matching)."""
        self._after_fetch.append(callback)

    # -- collaborations ---------------------------------------------------------------------

    def add(self, collaboration: Collaboration, *, actor: str) -> Collaboration:
        """Store a new collaboration (its settings checked by its exchange type; its bank
        created when missing); audit-logged as ``exchange.add``. The credentials reference
        is checked for syntax only: the secret may be provisioned after the collaboration."""
        c = collaboration
        validate_name(c.name, "collaboration")
        if c.name == "types":
            raise InputError(
                "'types' names the list of exchange types (GET /v1/exchanges/types)",
                hint="choose another name",
            )
        cls = exchange_type(c.exchange)
        settings = checked_settings(cls, c.settings, self.settings)
        credentials = check_reference(c.credentials, self.settings)
        if cls.needs_credentials and credentials is None:
            raise InputError(
                f"the {c.exchange} exchange needs credentials",
                hint="give them as file:/path/to/secret (in <home>/secrets) or "
                "env:AMPARO_SECRET_NAME",
            )
        interval = _check_interval(c.interval_seconds)
        now = self.clock()
        with self.store.transaction() as tx:
            try:
                bank = self.store.banks.get(c.bank)
            except BankNotFoundError:
                bank = self.store.banks.create(
                    BankInfo(
                        name=c.bank,
                        source=f"exchange:{c.exchange}",
                        supplier=c.name,
                        description=f"fed by collaboration {c.name} ({c.exchange})",
                    ),
                    actor=actor,
                )
            assert bank.id is not None
            stored = Collaboration(
                name=c.name,
                exchange=c.exchange,
                bank=bank.name,
                settings=settings,
                credentials=credentials,
                interval_seconds=interval,
                enabled=c.enabled,
                feedback=c.feedback,
            )
            self.records.create(stored, bank.id, now)
            tx.audit(actor, "exchange.add", f"collaboration:{c.name}", _audited(stored))
        return self.get(c.name)

    def get(self, name: str) -> Collaboration:
        return self.records.state(name).collaboration

    def list(self) -> builtins.list[CollaborationStatus]:
        return [self._status(s) for s in self.records.states()]

    def status(self, name: str) -> CollaborationStatus:
        return self._status(self.records.state(name))

    def _status(self, state: CollaborationState) -> CollaborationStatus:
        now = self.clock()
        collab = state.collaboration
        lease = self.leases.get(lease_name(collab.name), now)
        opinions = self.records.opinion_counts(state.id)
        return CollaborationStatus(
            collaboration=collab,
            checkpoint=state.checkpoint,
            last_fetch_at=state.last_fetch_at,
            last_attempt_at=state.last_attempt_at,
            last_error=state.last_error,
            lag_seconds=(
                (now - state.last_fetch_at).total_seconds()
                if state.last_fetch_at is not None
                else None
            ),
            entries_added=state.entries_added,
            entries_removed=state.entries_removed,
            records=self.records.live_records(state.id),
            quarantined=self.records.quarantined_count(state.id),
            pending_opinions=opinions.get("queued", 0),
            lease_holder=lease.holder if lease is not None else None,
            next_fetch_at=_next_fetch(state),
        )

    def update(self, name: str, *, actor: str, **changes: Any) -> Collaboration:
        """Change ``settings``, ``credentials``, ``interval_seconds``, ``feedback``. New
        settings drop the checkpoint (it may not apply to them): the next fetch is full and
        converges on what the source now lists."""
        unknown = set(changes) - set(_CHANGEABLE)
        if unknown:
            raise InputError(
                f"cannot change {', '.join(sorted(unknown))} of a collaboration",
                hint=f"change {', '.join(_CHANGEABLE)}; pause/resume with their commands",
            )
        state = self.records.state(name)
        values: dict[str, Any] = {}
        if "settings" in changes:
            cls = exchange_type(state.collaboration.exchange)
            values["settings"] = checked_settings(cls, changes["settings"] or {}, self.settings)
            if values["settings"] != state.collaboration.settings:
                values["checkpoint"] = None
        if "credentials" in changes:
            values["credentials"] = check_reference(changes["credentials"], self.settings)
        if "interval_seconds" in changes:
            values["interval_seconds"] = _check_interval(changes["interval_seconds"])
        if "feedback" in changes:
            values["feedback"] = bool(changes["feedback"])
        with self.store.transaction(refresh=False) as tx:
            self.records.change(state.id, values, self.clock())
            audited = {k: v for k, v in values.items() if k != "checkpoint"}
            if "checkpoint" in values:
                audited["checkpoint_reset"] = True
            tx.audit(actor, "exchange.update", f"collaboration:{name}", audited)
        return self.get(name)

    def pause(self, name: str, *, actor: str) -> Collaboration:
        return self._set_enabled(name, False, actor=actor)

    def resume(self, name: str, *, actor: str) -> Collaboration:
        return self._set_enabled(name, True, actor=actor)

    def _set_enabled(self, name: str, enabled: bool, *, actor: str) -> Collaboration:
        state = self.records.state(name)
        with self.store.transaction(refresh=False) as tx:
            self.records.change(state.id, {"enabled": enabled}, self.clock())
            action = "exchange.resume" if enabled else "exchange.pause"
            tx.audit(actor, action, f"collaboration:{name}", {})
        return self.get(name)

    def remove(self, name: str, *, actor: str, keep_entries: bool = True) -> None:
        """Remove a collaboration; its entries stay in the bank unless ``keep_entries`` is
        False (then those no other collaboration carries are withdrawn). Refused while a
        fetch of it runs (its lease is held)."""
        state = self.records.state(name)
        lease = lease_name(name)
        token = self.leases.acquire(lease, default_holder(), self.settings.exchange_lease_seconds)
        if token is None:
            raise ConflictError(
                f"collaboration {name!r} is being fetched",
                hint="try again when the fetch has finished (or pause it first)",
            )
        try:
            with self.store.transaction() as tx:
                removed = 0 if keep_entries else self.runner.withdraw_all(state)
                self.records.delete(state.id)
                tx.audit(
                    actor,
                    "exchange.remove",
                    f"collaboration:{name}",
                    {"keep_entries": keep_entries, "entries_removed": removed},
                )
        finally:
            self.leases.release(lease, token)

    # -- fetching ---------------------------------------------------------------------------

    def fetch(self, name: str, *, full: bool = False, holder: str | None = None) -> FetchResult:
        """Fetch one collaboration now, under its lease (another holder: skipped,
        ``fetched=False``). ``full`` ignores the checkpoint and converges on the full list.
        A source's failure is reported in ``FetchResult.error`` (and the status's
        ``last_error``), what was committed before it stays."""
        result = self.runner.fetch(name, full=full, holder=holder)
        if result.added or result.removed:
            for callback in self._after_fetch:
                try:
                    callback(result)
                except Exception:  # a listener must not fail the fetch that happened
                    log.exception("after-fetch callback failed for %s", name)
        return result

    def fetch_due(self, now: datetime | None = None) -> builtins.list[FetchResult]:
        """Fetch every enabled collaboration whose interval has passed (serve's loop), one
        after the other; one failing does not stop the others."""
        now = now or self.clock()
        results: builtins.list[FetchResult] = []
        for state in self.records.states():
            due = _next_fetch(state)
            if due is None or due > now:
                continue
            name = state.collaboration.name
            try:
                results.append(self.fetch(name))
            except Exception as exc:
                log.exception("fetch of collaboration %s failed", name)
                results.append(
                    FetchResult(collaboration=name, error=f"{type(exc).__name__}: {exc}")
                )
        return results

    def quarantined(self, name: str, *, limit: int = 100) -> builtins.list[QuarantinedItem]:
        state = self.records.state(name)
        return self.records.quarantined(state.id, name, limit=limit)

    # -- opinions ---------------------------------------------------------------------------

    def record_decision(self, item: CaseItem, decision: Decision) -> int:
        """Queue an opinion for each collaboration entry the decided item matched (confirm:
        true positive; false positive: false positive); returns how many were queued.

        Only collaborations with feedback on whose exchange takes feedback get one; the
        opinion names the source's record (and its hash, not the item's: a near PDQ match
        is an opinion about the listed hash)."""
        verdict = VERDICTS.get(decision.kind)
        if verdict is None or not item.entry_ids:
            return 0
        states = {s.id: s for s in self.records.states()}
        takes_feedback: dict[int, bool] = {}
        for cid, s in states.items():
            try:
                takes_feedback[cid] = exchange_type(s.collaboration.exchange).supports_feedback
            except InputError:  # an exchange type no longer installed
                takes_feedback[cid] = False
        if not any(takes_feedback.values()):
            return 0
        reason = None
        if verdict == "false_positive":
            reason = decision.note or (",".join(decision.annotations) or None)
        queued = 0
        entries = self.store.banks.get_entries(item.entry_ids)
        for entry in entries.values():
            for collab_id, record_id in self.records.records_carrying(
                entry.bank_id, entry.signal_type, entry.signal
            ):
                if not takes_feedback.get(collab_id):
                    continue
                if self.records.queue_opinion(
                    collab_id=collab_id,
                    record_id=record_id,
                    signal_type=entry.signal_type,
                    signal=entry.signal,
                    verdict=verdict,
                    reason=reason,
                    reviewer=decision.reviewer,
                    item_id=item.id,
                    decided_at=decision.at,
                    due=self.clock(),
                ):
                    queued += 1
        return queued

    def deliver_opinions(self, *, limit: int = 100) -> int:
        """Send queued opinions to their sources (retrying later on failure, with backoff;
        given up after ``OPINION_MAX_ATTEMPTS``); returns how many were sent."""
        now = self.clock()
        claimed = self.records.claim_opinions(
            now, now + timedelta(seconds=OPINION_CLAIM_SECONDS), limit=limit
        )
        if not claimed:
            return 0
        states = {s.id: s for s in self.records.states()}
        exchanges: dict[int, Exchange | AmparoError] = {}
        clients: builtins.list[RetryingClient] = []
        sent = 0
        try:
            for queued in claimed:
                state = states.get(queued.collab_id)
                if state is None:  # removed meanwhile (its rows went with it)
                    continue
                if queued.collab_id not in exchanges:
                    http = self.http_factory()
                    clients.append(http)
                    try:
                        exchanges[queued.collab_id] = self.runner.build(state.collaboration, http)
                    except AmparoError as exc:
                        exchanges[queued.collab_id] = exc
                exchange = exchanges[queued.collab_id]
                try:
                    if isinstance(exchange, AmparoError):
                        raise exchange
                    exchange.send_opinion(
                        Opinion(
                            record_id=queued.record_id,
                            signal_type=queued.signal_type,
                            signal=queued.signal,
                            verdict=queued.verdict,
                            reason=queued.reason,
                            reviewer=queued.reviewer,
                            at=queued.decided_at.isoformat(),
                        )
                    )
                except AmparoError as exc:
                    attempts = queued.attempts + 1
                    retry_at = None
                    if attempts < OPINION_MAX_ATTEMPTS:
                        wait = min(
                            OPINION_BACKOFF_MAX_SECONDS,
                            OPINION_BACKOFF_SECONDS * 2 ** (attempts - 1),
                        )
                        retry_at = self.clock() + timedelta(seconds=wait)
                    self.records.opinion_failed(queued.id, str(exc), retry_at)
                    log.warning(
                        "opinion %s to collaboration %s failed (attempt %d): %s",
                        queued.id,
                        state.collaboration.name,
                        attempts,
                        exc,
                    )
                    continue
                self.records.opinion_sent(queued.id, self.clock())
                sent += 1
        finally:
            for client in clients:
                client.close()
        if sent:
            with self.store.transaction(refresh=False) as tx:
                tx.audit(SYSTEM_ACTOR, "exchange.opinions_sent", "", {"sent": sent})
        return sent


def _check_interval(value: Any) -> int:
    try:
        interval = int(value)
    except (TypeError, ValueError):
        interval = 0
    if interval < 1:
        raise InputError(
            f"invalid fetch interval {value!r}", hint="give a whole number of seconds, >= 1"
        )
    return interval


def _next_fetch(state: CollaborationState) -> datetime | None:
    """When serve fetches it next: an interval after the last attempt (never tried: at
    once); None while paused."""
    collab = state.collaboration
    if not collab.enabled:
        return None
    if state.last_attempt_at is None:
        return collab.created_at
    return state.last_attempt_at + timedelta(seconds=collab.interval_seconds)


def _audited(collab: Collaboration) -> dict[str, Any]:
    """What the audit log records of a collaboration: the reference to the secret (where
    it is), never the secret."""
    return {
        "exchange": collab.exchange,
        "bank": collab.bank,
        "settings": collab.settings,
        "credentials": collab.credentials,
        "interval_seconds": collab.interval_seconds,
        "enabled": collab.enabled,
        "feedback": collab.feedback,
    }
