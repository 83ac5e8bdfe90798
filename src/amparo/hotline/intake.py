"""Placeholder: filled by the part's owner (see amparo.hotline.service)."""

from __future__ import annotations

from amparo.hotline.context import HotlineContext


class Intake:
    def __init__(self, ctx: HotlineContext) -> None:
        self.ctx = ctx
