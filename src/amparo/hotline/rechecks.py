"""Placeholder: filled by the part's owner (see amparo.hotline.service)."""

from __future__ import annotations

from datetime import datetime

from amparo.config import SYSTEM_ACTOR
from amparo.hotline.context import HotlineContext
from amparo.hotline.model import UrlReport
from amparo.hotline.notifying import Notifier


class Rechecker:
    def __init__(self, ctx: HotlineContext, notifier: Notifier) -> None:
        self.ctx = ctx
        self.notifier = notifier

    def recheck_due(self, now: datetime | None = None, *, limit: int = 50) -> int:
        """Re-check the reports whose re-check is due; how many."""
        raise NotImplementedError

    def recheck(self, report_id: int, *, actor: str = SYSTEM_ACTOR) -> UrlReport:
        """Re-check one report now: items gone are marked removed, the report removed when
        every confirmed item is; content back online reopens it."""
        raise NotImplementedError
