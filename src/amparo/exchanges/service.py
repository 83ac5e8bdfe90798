"""Collaborations and their fetches: the exchanges context's use cases.

Owned by the exchanges work: storage in :mod:`amparo.store.exchanges`, the fetch loop in
:mod:`amparo.exchanges.runner`. Shells (``amparo exchange``, ``/v1/exchanges``, the serve
background loop) call only this service.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime
from typing import Any

from amparo.banks.service import BankService
from amparo.clock import Clock, utc_now
from amparo.config import Settings
from amparo.exchanges.model import (
    Collaboration,
    CollaborationStatus,
    FetchResult,
    QuarantinedItem,
)
from amparo.review.model import CaseItem, Decision
from amparo.store import Store


class ExchangeService:
    """Add, change, fetch and report on collaborations; queue and send reviewers' opinions."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        banks: BankService,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.store = store
        self.banks = banks
        self.clock = clock
        self._after_fetch: list[Callable[[FetchResult], None]] = []

    def after_fetch(self, callback: Callable[[FetchResult], None]) -> None:
        """Run ``callback`` after each fetch that changed entries (retroactive matching)."""
        self._after_fetch.append(callback)

    # -- collaborations ---------------------------------------------------------------------

    def add(self, collaboration: Collaboration, *, actor: str) -> Collaboration:
        """Store a new collaboration (its settings checked by its exchange type; its bank
        created when missing); audit-logged as ``exchange.add``."""
        raise NotImplementedError

    def get(self, name: str) -> Collaboration:
        raise NotImplementedError

    def list(self) -> list[CollaborationStatus]:
        raise NotImplementedError

    def status(self, name: str) -> CollaborationStatus:
        raise NotImplementedError

    def update(self, name: str, *, actor: str, **changes: Any) -> Collaboration:
        """Change ``settings``, ``credentials``, ``interval_seconds``, ``feedback``."""
        raise NotImplementedError

    def pause(self, name: str, *, actor: str) -> Collaboration:
        raise NotImplementedError

    def resume(self, name: str, *, actor: str) -> Collaboration:
        raise NotImplementedError

    def remove(self, name: str, *, actor: str, keep_entries: bool = True) -> None:
        """Remove a collaboration; its entries stay in the bank unless ``keep_entries`` is
        False (then they are withdrawn)."""
        raise NotImplementedError

    # -- fetching ---------------------------------------------------------------------------

    def fetch(self, name: str, *, full: bool = False, holder: str | None = None) -> FetchResult:
        """Fetch one collaboration now, under its lease (another holder: skipped,
        ``fetched=False``). ``full`` ignores the checkpoint and converges on the full list."""
        raise NotImplementedError

    def fetch_due(self, now: datetime | None = None) -> builtins.list[FetchResult]:
        """Fetch every enabled collaboration whose interval has passed (serve's loop)."""
        raise NotImplementedError

    def quarantined(self, name: str, *, limit: int = 100) -> builtins.list[QuarantinedItem]:
        raise NotImplementedError

    # -- opinions ---------------------------------------------------------------------------

    def record_decision(self, item: CaseItem, decision: Decision) -> int:
        """Queue an opinion for each collaboration entry the decided item matched (confirm:
        true positive; false positive: false positive); returns how many were queued."""
        raise NotImplementedError

    def deliver_opinions(self, *, limit: int = 100) -> int:
        """Send queued opinions to their sources (retrying later on failure)."""
        raise NotImplementedError
