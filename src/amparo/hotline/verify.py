"""Placeholder: filled by the part's owner (see amparo.hotline.service)."""

from __future__ import annotations

from datetime import datetime

from amparo.config import SYSTEM_ACTOR
from amparo.hotline.attribution import Attributor
from amparo.hotline.context import HotlineContext
from amparo.hotline.model import UrlReport


class Verifier:
    def __init__(self, ctx: HotlineContext, attributor: Attributor) -> None:
        self.ctx = ctx
        self.attributor = attributor

    def crawl_due(self, now: datetime | None = None, *, limit: int = 20) -> int:
        """Crawl reports waiting for it (new, or unreachable and due again); how many."""
        raise NotImplementedError

    def crawl(self, report_id: int, *, actor: str = SYSTEM_ACTOR) -> UrlReport:
        """Crawl one report now: fetch, extract, hash, match, preserve unknown media; the
        report's status moves to assessment, confirmed, closed or unreachable."""
        raise NotImplementedError
