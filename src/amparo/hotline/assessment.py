"""Placeholder: filled by the part's owner (see amparo.hotline.service)."""

from __future__ import annotations

from amparo.hotline.context import HotlineContext
from amparo.hotline.model import HotlineItem


class Assessments:
    def __init__(self, ctx: HotlineContext) -> None:
        self.ctx = ctx

    def assess(
        self,
        item_id: int,
        assessment: str,
        *,
        actor: str,
        jurisdiction: str | None = None,
        note: str | None = None,
    ) -> HotlineItem:
        """An analyst's classification of an item (``baseline``, ``national`` under a
        jurisdiction, ``not_illegal``); moves its report on. Audit-logged ``hotline.assess``."""
        raise NotImplementedError

    def waiting(self, *, limit: int = 50, offset: int = 0) -> list[HotlineItem]:
        """Unknown items waiting for an analyst, oldest first."""
        raise NotImplementedError
