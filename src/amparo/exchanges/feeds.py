"""Amparo-to-Amparo federation, the publisher's side: banks published as signed feeds,
partner grants, opinions from subscribers, withdrawals acknowledged.

Storage in :mod:`amparo.store.feeds`; the subscriber's side is the ``amparo`` exchange type
(:mod:`amparo.exchanges.amparo_feed`); the canonical signed form in
:mod:`amparo.exchanges.signing`.
"""

from __future__ import annotations

from amparo.banks.service import BankService
from amparo.clock import Clock, utc_now
from amparo.config import Settings
from amparo.store import Store


class FeedService:
    """Publish banks as feeds, grant them to partner keys, serve signed pages, take opinions."""

    def __init__(
        self, settings: Settings, store: Store, banks: BankService, *, clock: Clock = utc_now
    ) -> None:
        self.settings = settings
        self.store = store
        self.banks = banks
        self.clock = clock
