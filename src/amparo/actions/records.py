"""What the actions-taken log holds: one record per action a rule took on a find.

The log is kept by :class:`amparo.store.rules.ActionLog`, next to the versioned rules
(:class:`amparo.store.rules.RuleRepository`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ActionRecord:
    """One action taken (a row of the actions-taken log)."""

    id: int
    at: datetime
    actor: str
    rule: str
    rule_version: int
    action: str
    sha256: str
    source: dict[str, Any]
    outcome: str
    """``done``, ``failed`` or ``skipped``."""
    detail: dict[str, Any]
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "rule": self.rule,
            "rule_version": self.rule_version,
            "action": self.action,
            "sha256": self.sha256,
            "source": self.source,
            "outcome": self.outcome,
            "detail": self.detail,
            "error": self.error,
        }
