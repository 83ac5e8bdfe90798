"""The share-back path: a reviewer-confirmed item proposed to an outgoing bank, published
only once a curator approves it (with its provenance: this organisation, the reviewer's
verdict, classification and jurisdiction)."""

from __future__ import annotations

from amparo.banks.service import BankService
from amparo.clock import Clock, utc_now
from amparo.config import Settings
from amparo.store import Store


class ProposalService:
    def __init__(
        self, settings: Settings, store: Store, banks: BankService, *, clock: Clock = utc_now
    ) -> None:
        self.settings = settings
        self.store = store
        self.banks = banks
        self.clock = clock
