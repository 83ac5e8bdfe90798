"""Placeholder: filled by the part's owner (see amparo.hotline.service)."""

from __future__ import annotations

from datetime import datetime

from amparo.hotline.context import HotlineContext
from amparo.hotline.model import Notice


class Notifier:
    def __init__(self, ctx: HotlineContext) -> None:
        self.ctx = ctx

    def notify_due(self, now: datetime | None = None, *, limit: int = 50) -> int:
        """Send the notices, repeats, escalations and forwards due now; how many reports."""
        raise NotImplementedError

    def notify(self, report_id: int, *, actor: str, force: bool = False) -> list[Notice]:
        """Send a report's due notice (or, with ``force``, one now)."""
        raise NotImplementedError
