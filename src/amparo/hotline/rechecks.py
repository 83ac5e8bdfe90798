"""Placeholder: filled by the part's owner (see amparo.hotline.service)."""

from __future__ import annotations

from amparo.hotline.context import HotlineContext
from amparo.hotline.notifying import Notifier


class Rechecker:
    def __init__(self, ctx: HotlineContext, notifier: Notifier) -> None:
        self.ctx = ctx
        self.notifier = notifier
