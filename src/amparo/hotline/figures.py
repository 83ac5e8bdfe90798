"""Placeholder: filled by the part's owner (see amparo.hotline.service)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from amparo.hotline.context import HotlineContext


class Figures:
    def __init__(self, ctx: HotlineContext) -> None:
        self.ctx = ctx

    def compute(self, now: datetime | None = None) -> dict[str, Any]:
        """The figures a hotline publishes: overall, per provider and per country."""
        raise NotImplementedError
