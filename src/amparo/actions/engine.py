"""The actioner: evaluates the current rules on each find and carries out their actions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from amparo.events import MatchedContent

if TYPE_CHECKING:
    from amparo.app import Amparo


class Actioner:
    def __init__(self, amparo: Amparo) -> None:
        self.amparo = amparo

    def handle(
        self, content: MatchedContent, *, media: bytes | Path | None = None, actor: str = "local"
    ) -> list[Any]:
        """Run the rules on one find; return what was done."""
        raise NotImplementedError
