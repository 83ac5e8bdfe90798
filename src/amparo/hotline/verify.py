"""Placeholder: filled by the part's owner (see amparo.hotline.service)."""

from __future__ import annotations

from amparo.hotline.attribution import Attributor
from amparo.hotline.context import HotlineContext


class Verifier:
    def __init__(self, ctx: HotlineContext, attributor: Attributor) -> None:
        self.ctx = ctx
        self.attributor = attributor
