"""Placeholder: filled by the part's owner (see amparo.hotline.service)."""

from __future__ import annotations

from amparo.hotline.context import HotlineContext
from amparo.hotline.notifying import Notifier
from amparo.hotline.rechecks import Rechecker
from amparo.hotline.verify import Verifier


class HotlineRunner:
    def __init__(
        self, ctx: HotlineContext, verifier: Verifier, notifier: Notifier, rechecker: Rechecker
    ) -> None:
        self.ctx = ctx
        self.verifier = verifier
        self.notifier = notifier
        self.rechecker = rechecker

    def run_once(self) -> object:
        """One pass of the scheduler (crawls, notices, re-checks due now)."""
        return None
