"""Report drafts, CyberTipline-style XML and generic JSON reports, submission and packages."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from amparo.app import Amparo


class ReportService:
    def __init__(self, amparo: Amparo) -> None:
        self.amparo = amparo

    def queue_draft(self, case_id: int, *, rule: str | None = None, actor: str = "local") -> int:
        """Queue a report draft for a case; it is built once the case is confirmed."""
        raise NotImplementedError
