"""Placeholder: filled by the part's owner (see amparo.hotline.service)."""

from __future__ import annotations

from amparo.hotline.context import HotlineContext
from amparo.hotline.model import UrlReport


class Intake:
    def __init__(self, ctx: HotlineContext) -> None:
        self.ctx = ctx

    def report(
        self,
        url: str,
        *,
        channel: str,
        actor: str,
        reporter: str | None = None,
        language: str = "en",
        contact: str | None = None,
        comment: str | None = None,
    ) -> tuple[UrlReport, bool]:
        """Record a report of ``url`` (normalised, checked); ``True`` when it joined an open
        report of the same URL. Audit-logged as ``hotline.report``."""
        raise NotImplementedError
