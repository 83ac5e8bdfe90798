"""A fake of :class:`amparo.exchanges.service.ExchangeService` for the shells' tests (CLI,
API, serve's loop, metrics): collaborations in a dict, fetches scripted per name, every call
recorded. Its methods have the real service's signatures (the contract)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from amparo.config import Settings
from amparo.errors import AmparoError, ConflictError, InputError, NotFoundError
from amparo.exchanges.model import (
    Collaboration,
    CollaborationStatus,
    FetchResult,
    QuarantinedItem,
)

KNOWN_TYPES = ("file", "url", "ncmec", "stopncii")
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeExchangeService:
    def __init__(self) -> None:
        self.collaborations: dict[str, Collaboration] = {}
        self.statuses: dict[str, dict[str, Any]] = {}
        """Extra status fields by name (last_fetch_at, quarantined, last_error, ...)."""
        self.results: dict[str, FetchResult] = {}
        """What fetching a name returns (default: a small successful fetch)."""
        self.raises: dict[str, AmparoError] = {}
        """What fetching a name raises."""
        self.due_raises: builtins.list[BaseException] = []
        """Raised by the next fetch_due calls, one each (then it works)."""
        self.quarantine: dict[str, builtins.list[QuarantinedItem]] = {}
        self.calls: builtins.list[tuple[str, Any]] = []
        self.due: builtins.list[str] = []
        """What fetch_due fetches."""

    # -- collaborations -----------------------------------------------------------------

    def add(self, collaboration: Collaboration, *, actor: str) -> Collaboration:
        self.calls.append(("add", collaboration))
        if collaboration.exchange not in KNOWN_TYPES:
            raise InputError(
                f"unknown exchange type {collaboration.exchange!r}",
                hint=f"use one of: {', '.join(KNOWN_TYPES)}",
            )
        if collaboration.name in self.collaborations:
            raise ConflictError(
                f"collaboration {collaboration.name!r} exists", hint="choose another name"
            )
        added = replace(collaboration, id=len(self.collaborations) + 1, created_at=NOW)
        self.collaborations[collaboration.name] = added
        return added

    def get(self, name: str) -> Collaboration:
        if name not in self.collaborations:
            raise NotFoundError(
                f"no collaboration {name!r}", hint="amparo exchange list shows them"
            )
        return self.collaborations[name]

    def list(self) -> builtins.list[CollaborationStatus]:
        self.calls.append(("list", None))
        return [self.status(name) for name in sorted(self.collaborations)]

    def status(self, name: str) -> CollaborationStatus:
        c = self.get(name)
        return CollaborationStatus(collaboration=c, **self.statuses.get(name, {}))

    def update(self, name: str, *, actor: str, **changes: Any) -> Collaboration:
        self.calls.append(("update", (name, changes)))
        c = self.get(name)
        unknown = set(changes) - {"settings", "credentials", "interval_seconds", "feedback"}
        if unknown:
            raise InputError(f"cannot change {sorted(unknown)}")
        self.collaborations[name] = replace(c, **changes)
        return self.collaborations[name]

    def pause(self, name: str, *, actor: str) -> Collaboration:
        self.calls.append(("pause", name))
        self.collaborations[name] = replace(self.get(name), enabled=False)
        return self.collaborations[name]

    def resume(self, name: str, *, actor: str) -> Collaboration:
        self.calls.append(("resume", name))
        self.collaborations[name] = replace(self.get(name), enabled=True)
        return self.collaborations[name]

    def remove(self, name: str, *, actor: str, keep_entries: bool = True) -> None:
        self.calls.append(("remove", (name, keep_entries)))
        self.get(name)
        del self.collaborations[name]

    # -- fetching -----------------------------------------------------------------------

    def fetch(self, name: str, *, full: bool = False, holder: str | None = None) -> FetchResult:
        self.calls.append(("fetch", (name, full)))
        self.get(name)
        if name in self.raises:
            raise self.raises[name]
        result = self.results.get(name) or FetchResult(
            collaboration=name, batches=1, upserts=3, deletions=1, added=3, removed=1
        )
        return replace(result, full=full or result.full)

    def fetch_due(self, now: datetime | None = None) -> builtins.list[FetchResult]:
        self.calls.append(("fetch_due", now))
        if self.due_raises:
            raise self.due_raises.pop(0)
        return [self.fetch(name) for name in self.due]

    def quarantined(self, name: str, *, limit: int = 100) -> builtins.list[QuarantinedItem]:
        self.get(name)
        return self.quarantine.get(name, [])[:limit]

    # -- opinions -----------------------------------------------------------------------

    def record_decision(self, item: Any, decision: Any) -> int:
        return 0

    def deliver_opinions(self, *, limit: int = 100) -> int:
        self.calls.append(("deliver_opinions", limit))
        return 0


def quarantined_item(name: str, n: int, reason: str = "not a PDQ hash") -> QuarantinedItem:
    return QuarantinedItem(
        id=n,
        collaboration=name,
        reason=reason,
        raw="<entry>zz</entry>",
        record_id=f"r{n}",
        first_seen=NOW - timedelta(hours=1),
        last_tried=NOW,
        attempts=2,
    )


class FakeRetro:
    """Retroactive matching that is off (the serve loop's third step)."""

    def catch_up(self) -> int:
        return 0


@dataclass
class FakeAmparo:
    """What a CLI command opens: the settings, the fake service, close()."""

    settings: Settings
    exchanges: FakeExchangeService
    closed: builtins.list[bool] = field(default_factory=builtins.list)
    retro: FakeRetro = field(default_factory=lambda: FakeRetro())

    def close(self) -> None:
        self.closed.append(True)
