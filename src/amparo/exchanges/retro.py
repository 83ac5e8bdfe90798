"""Retroactive matching (opt-in, ``retro_match_days``): the hashes (never the media) of
content checked in the last N days are kept; when new entries arrive from any source, those
hashes are matched again and new finds run the action rules with the source marked
``retro``. Expired hashes are purged on schedule."""

from __future__ import annotations

from amparo.clock import Clock, utc_now
from amparo.config import Settings
from amparo.store import Store


class RetroService:
    def __init__(self, settings: Settings, store: Store, *, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
