"""One fetch of one collaboration: under its lease, batch by batch, each batch one unit of
work with its checkpoint, so a fetch that dies anywhere resumes from the last committed
batch with nothing lost or applied twice.

Per batch, in one transaction: renew the lease (lost: the batch rolls back and the fetch
stops, another process has taken over), skip federated updates that already passed through
this organisation (no A -> B -> A loops), apply the updates to the collaboration's records,
add new and changed entries to the bank, remove signals no live record carries any more
(soft: the index drops them through the change log), keep malformed items in quarantine,
save the checkpoint and counters, and append one ``exchange.fetch`` audit entry.

A full fetch (no checkpoint, a stale one, or asked for) starts a new *generation*: every
record it lists is stamped with it, and its ``complete`` batch withdraws the records left on
an older generation. Unchanged records are not written to the bank again, so re-importing the
same list changes no entry and moves no change-log position.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from amparo.clock import Clock
from amparo.config import SYSTEM_ACTOR, Settings
from amparo.errors import AmparoError, ConflictError
from amparo.exchanges.base import Exchange, ExchangeContext, exchange_type
from amparo.exchanges.credentials import load_credentials
from amparo.exchanges.http import RetryingClient
from amparo.exchanges.model import (
    Batch,
    Checkpoint,
    Collaboration,
    FetchResult,
    Malformed,
    Update,
)
from amparo.signals import normalize_signal
from amparo.store import Store
from amparo.store.exchanges import CollaborationState, ExchangeRepository, Pair
from amparo.store.leases import LeaseRepository, default_holder

log = logging.getLogger("amparo.exchanges")

WITHDRAW_CHUNK = 5000


def lease_name(collaboration: str) -> str:
    return f"exchange:{collaboration}"


@dataclass
class _Run:
    """The state of one fetch while it runs."""

    state: CollaborationState
    token: str
    exchange: Exchange
    result: FetchResult
    generation: int
    full_in_progress: bool
    new_full: bool
    """The runner started a full fetch: the first batch that lands begins a generation."""


class FetchRunner:
    """Runs fetches; built by :class:`~amparo.exchanges.service.ExchangeService`."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        records: ExchangeRepository,
        leases: LeaseRepository,
        *,
        clock: Clock,
        organisation: Callable[[], str],
        http_factory: Callable[[], RetryingClient],
    ) -> None:
        self.settings = settings
        self.store = store
        self.records = records
        self.leases = leases
        self.clock = clock
        self.organisation = organisation
        self.http_factory = http_factory

    # -- building an exchange ---------------------------------------------------------------

    def build(self, collab: Collaboration, http: RetryingClient) -> Exchange:
        """The collaboration's exchange, with its credentials read now (never stored)."""
        cls = exchange_type(collab.exchange)
        credentials = load_credentials(collab.credentials, self.settings)
        context = ExchangeContext(
            settings=self.settings,
            http=http,
            clock=self.clock,
            organisation=self.organisation(),
        )
        return cls(dict(collab.settings), credentials, context)

    # -- one fetch --------------------------------------------------------------------------

    def fetch(self, name: str, *, full: bool = False, holder: str | None = None) -> FetchResult:
        state = self.records.state(name)
        ttl = self.settings.exchange_lease_seconds
        token = self.leases.acquire(lease_name(name), holder or default_holder(), ttl)
        if token is None:
            return FetchResult(collaboration=name, fetched=False)
        result = FetchResult(
            collaboration=name,
            bank=state.collaboration.bank,
            seq_from=self.store.changes.current_seq(),
        )
        http = self.http_factory()
        try:
            try:
                exchange = self.build(state.collaboration, http)
                run = _Run(
                    state=state,
                    token=token,
                    exchange=exchange,
                    result=result,
                    generation=state.generation,
                    full_in_progress=state.full_in_progress,
                    new_full=False,
                )
                self._fetch(run, full)
                self._retry_quarantined(run)
            except AmparoError as exc:
                result.error = _describe(exc)
                log.warning("fetch of collaboration %s failed: %s", name, result.error)
                self.records.record_attempt(state.id, self.clock(), result.error)
            except BaseException as exc:
                self.records.record_attempt(
                    state.id, self.clock(), f"internal error: {type(exc).__name__}: {exc}"[:2000]
                )
                raise
            else:
                self.records.record_attempt(state.id, self.clock(), None)
        finally:
            self.leases.release(lease_name(name), token)
            http.close()
        return result

    def _fetch(self, run: _Run, full: bool) -> None:
        now = self.clock()
        checkpoint: Checkpoint | None = None
        if not full:
            try:
                checkpoint = run.exchange.load_checkpoint(run.state.checkpoint)
            except (TypeError, ValueError, KeyError) as exc:
                log.warning(
                    "collaboration %s: unreadable checkpoint (%s); fetching everything",
                    run.state.collaboration.name,
                    exc,
                )
                checkpoint = None
        if checkpoint is not None and checkpoint.is_stale(now):
            checkpoint = None
        run.new_full = checkpoint is None
        run.result.full = run.new_full
        batches: Iterator[Batch] = iter(run.exchange.fetch(checkpoint))
        for batch in batches:
            for part in self._split(batch):
                self._commit(run, part)

    def _split(self, batch: Batch) -> list[Batch]:
        """A batch too big for one transaction, as several: the malformed items go with the
        first part, the checkpoint and ``complete`` only with the last, so a crash between
        parts resumes from the previous checkpoint and re-applies them (idempotently)."""
        size = max(1, int(self.settings.exchange_batch_size))
        if len(batch.updates) <= size:
            return [batch]
        chunks = [batch.updates[i : i + size] for i in range(0, len(batch.updates), size)]
        parts = []
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            parts.append(
                Batch(
                    updates=chunk,
                    malformed=batch.malformed if i == 0 else [],
                    checkpoint=batch.checkpoint if last else None,
                    full=batch.full,
                    complete=batch.complete and last,
                    unchanged=False,
                )
            )
        return parts

    def _commit(
        self, run: _Run, batch: Batch, *, retry_of: int | None = None, last_retry: bool = True
    ) -> None:
        """Store one batch in one unit of work (see the module's docstring)."""
        state, result = run.state, run.result
        name = state.collaboration.name
        now = self.clock()
        with self.store.transaction() as tx:
            if not self.leases.renew(
                lease_name(name), run.token, self.settings.exchange_lease_seconds, now
            ):
                raise ConflictError(
                    f"lost the lease on collaboration {name!r} (another process took over "
                    "after it expired)",
                    hint="raise exchange_lease_seconds if batches take longer than it",
                )
            generation, full_in_progress = run.generation, run.full_in_progress
            checkpoint = batch.checkpoint.dumps() if batch.checkpoint is not None else None
            if batch.unchanged:
                self.records.save_progress(
                    state.id,
                    generation=generation,
                    full_in_progress=full_in_progress,
                    added=0,
                    removed=0,
                    checkpoint=checkpoint,
                )
                tx.audit(SYSTEM_ACTOR, "exchange.fetch", f"collaboration:{name}", {"unchanged": 1})
                result.batches += 1
                return
            if retry_of is None and (run.new_full or (batch.full and not full_in_progress)):
                generation, full_in_progress = generation + 1, True
                run.new_full = False
            valid, malformed, skipped = self._screen(batch.updates)
            changes = self.records.apply_updates(state.id, valid, generation, now)
            added = 0
            if changes.to_add:
                counts = self.store.banks.add_entries(
                    state.collaboration.bank,
                    list(changes.to_add.values()),
                    actor=SYSTEM_ACTOR,
                    action="exchange.entries",
                    details={"collaboration": name},
                )
                added = counts.added
            self.records.resolve_records(state.id, {u.record_id for u in valid}, now)
            freed = set(changes.freed)
            withdrawn = 0
            if batch.complete and full_in_progress and retry_of is None:
                while True:
                    pairs = self.records.withdraw_unseen(
                        state.id, generation, now, limit=WITHDRAW_CHUNK
                    )
                    if not pairs:
                        break
                    withdrawn += len(pairs)
                    freed |= pairs
                full_in_progress = False
            removed = self._remove_orphans(state, freed)
            malformed = [*batch.malformed, *malformed]
            if retry_of is not None and (last_retry or malformed):
                self.records.retried(
                    retry_of,
                    now,
                    resolved=not malformed,
                    reason=malformed[0].reason if malformed else None,
                )
            else:
                for item in malformed:
                    self.records.quarantine(
                        state.id,
                        reason=item.reason[:2000],
                        raw=Malformed.cut(item.raw),
                        record_id=item.record_id,
                        retry=item.retry,
                        now=now,
                    )
            self.records.save_progress(
                state.id,
                generation=generation,
                full_in_progress=full_in_progress,
                added=added,
                removed=removed,
                checkpoint=checkpoint if retry_of is None else None,
            )
            counts_out: dict[str, Any] = {
                "upserts": changes.upserts,
                "unchanged": changes.unchanged,
                "deletions": changes.deletions,
                "added": added,
                "removed": removed,
                "withdrawn": withdrawn,
                "quarantined": len(malformed),
                "skipped_loops": skipped,
            }
            if batch.full:
                counts_out["full"] = True
            if retry_of is not None:
                counts_out["retry_of"] = retry_of
            tx.audit(SYSTEM_ACTOR, "exchange.fetch", f"collaboration:{name}", counts_out)
        # Committed: only now is the run's view of the collaboration moved on.
        run.generation, run.full_in_progress = generation, full_in_progress
        result.batches += 1
        result.upserts += changes.upserts
        result.deletions += changes.deletions
        result.added += added
        result.removed += removed
        result.quarantined += len(malformed)
        result.skipped_loops += skipped

    def _screen(self, updates: list[Update]) -> tuple[list[Update], list[Malformed], int]:
        """Drop updates that came back round a federation loop; normalise signals; turn an
        upsert that cannot be read into a quarantined record (the rest of the batch lands)."""
        organisation = self.organisation()
        valid: list[Update] = []
        malformed: list[Malformed] = []
        skipped = 0
        for u in updates:
            p = u.provenance
            if (
                organisation
                and p is not None
                and (organisation in p.path or p.origin == organisation)
            ):
                skipped += 1
                continue
            if not u.record_id or len(u.record_id) > 200:
                malformed.append(
                    Malformed(
                        "record id missing or longer than 200 characters",
                        raw=_raw(u),
                        record_id=None,
                    )
                )
                continue
            if u.deleted:
                valid.append(u)
                continue
            if not u.signal_type or not u.signal:
                malformed.append(
                    Malformed("record without a signal", raw=_raw(u), record_id=u.record_id)
                )
                continue
            try:
                signal_type, signal = normalize_signal(u.signal_type, u.signal)
            except AmparoError as exc:
                malformed.append(Malformed(str(exc), raw=_raw(u), record_id=u.record_id))
                continue
            if (signal_type, signal) != (u.signal_type, u.signal):
                u = replace(u, signal_type=signal_type, signal=signal)
            valid.append(u)
        return valid, malformed, skipped

    def _remove_orphans(self, state: CollaborationState, freed: set[Pair]) -> int:
        orphans = self.records.orphaned(state.bank_id, freed)
        if not orphans:
            return 0
        return self.store.banks.remove_entries(
            state.collaboration.bank, orphans, actor=SYSTEM_ACTOR
        )

    def _retry_quarantined(self, run: _Run) -> None:
        """Ask the exchange for quarantined pages again once they have waited
        ``exchange_quarantine_retry_seconds``; a page that now reads lands as a batch."""
        now = self.clock()
        before = now - timedelta(seconds=self.settings.exchange_quarantine_retry_seconds)
        for quarantine_id, retry in self.records.due_retries(run.state.id, before):
            try:
                batches = list(run.exchange.refetch(retry))
            except AmparoError as exc:
                self.records.retried(quarantine_id, now, resolved=False, reason=_describe(exc))
                continue
            if not batches:
                self.records.retried(quarantine_id, now, resolved=False)
                continue
            for i, batch in enumerate(batches):
                self._commit(
                    run,
                    replace(batch, checkpoint=None, complete=False, full=False),
                    retry_of=quarantine_id,
                    last_retry=i == len(batches) - 1,
                )

    # -- removal ----------------------------------------------------------------------------

    def withdraw_all(self, state: CollaborationState) -> int:
        """Withdraw every record of a collaboration and remove the entries only it carried
        (in the caller's transaction); how many entries were removed."""
        freed = self.records.withdraw_all(state.id, self.clock())
        return self._remove_orphans(state, freed)


def _describe(exc: AmparoError) -> str:
    """The error as status shows it (its message and hint)."""
    return str(exc)[:2000]


def _raw(update: Update) -> str:
    data = {
        "record_id": update.record_id,
        "signal_type": update.signal_type,
        "signal": update.signal,
        "category": update.category,
    }
    return Malformed.cut(json.dumps(data, default=str))
