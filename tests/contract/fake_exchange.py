"""A scripted exchange for the runner's tests: a source with records and a change log,
listed in pages (full fetch) or read from a cursor (incremental), which can crash between
pages, emit malformed pages, block until released, and count the opinions sent to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from amparo.errors import ExchangeError, InputError
from amparo.exchanges.base import Exchange, register
from amparo.exchanges.model import Batch, Checkpoint, Malformed, Opinion, Provenance, Update

KIND = "fake-test"


@dataclass
class FakeCheckpoint(Checkpoint):
    cursor: int = 0
    """Position in the source's change log."""
    offset: int | None = None
    """Set while a full listing is under way: where it continues."""
    expires: str | None = None

    def is_stale(self, now: datetime | None = None) -> bool:
        if self.expires is None or now is None:
            return False
        return now >= datetime.fromisoformat(self.expires)


@dataclass
class FakeSource:
    page: int = 2
    records: dict[str, Update] = field(default_factory=dict)
    log: list[Update] = field(default_factory=list)
    crash_after: int | None = None
    """Raise after this many batches of the next fetch (one shot)."""
    malformed: list[Malformed] = field(default_factory=list)
    """Sent with the next fetch's first batch (one shot)."""
    retries: dict[str, Batch] = field(default_factory=dict)
    """What ``refetch`` answers for a page id."""
    checkpoint_ttl: float | None = None
    gate: threading.Event | None = None
    entered: threading.Event = field(default_factory=threading.Event)
    fetches: int = 0
    sent: list[Opinion] = field(default_factory=list)
    fail_opinions: int = 0
    """Fail this many send_opinion calls (ExchangeError) before succeeding."""

    def put(self, record_id: str, signal: str, signal_type: str = "md5", **kw: Any) -> Update:
        u = Update(record_id, signal_type, signal, **kw)
        self.records[record_id] = u
        self.log.append(u)
        return u

    def delete(self, record_id: str) -> None:
        self.records.pop(record_id, None)
        self.log.append(Update(record_id, deleted=True))

    def unlist(self, record_id: str) -> None:
        """Drop a record without logging a deletion (only a full fetch can notice)."""
        self.records.pop(record_id)


SOURCES: dict[str, FakeSource] = {}


@register
class FakeExchange(Exchange):
    kind = KIND
    description = "scripted source for tests"
    checkpoint_type = FakeCheckpoint
    supports_feedback = True

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(settings.get("source"), str):
            raise InputError("the fake exchange needs a source", hint="settings={'source': ...}")
        return settings

    @property
    def source(self) -> FakeSource:
        return SOURCES[self.settings["source"]]

    def _cp(self, **kw: Any) -> FakeCheckpoint:
        cp = FakeCheckpoint(fetched_at=self.context.clock().isoformat(), **kw)
        if self.source.checkpoint_ttl is not None:
            expires = self.context.clock() + timedelta(seconds=self.source.checkpoint_ttl)
            cp.expires = expires.isoformat()
        return cp

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[Batch]:
        src = self.source
        src.fetches += 1
        if src.gate is not None:
            src.entered.set()
            src.gate.wait(20)
        assert checkpoint is None or isinstance(checkpoint, FakeCheckpoint)
        crash_after, src.crash_after = src.crash_after, None
        malformed, src.malformed = src.malformed, []
        batches: list[Batch] = []
        if checkpoint is None or checkpoint.offset is not None:
            items = [src.records[k] for k in sorted(src.records)]
            start = checkpoint.offset if checkpoint is not None and checkpoint.offset else 0
            snapshot = checkpoint.cursor if checkpoint is not None else len(src.log)
            offsets = list(range(start, len(items), src.page)) or [start]
            for n, at in enumerate(offsets):
                last = n == len(offsets) - 1
                batches.append(
                    Batch(
                        updates=items[at : at + src.page],
                        checkpoint=self._cp(
                            cursor=snapshot, offset=None if last else at + src.page
                        ),
                        full=True,
                        complete=last,
                    )
                )
        else:
            items = src.log[checkpoint.cursor :]
            if not items:
                batches.append(Batch(unchanged=True, checkpoint=self._cp(cursor=checkpoint.cursor)))
            for at in range(0, len(items), src.page):
                part = items[at : at + src.page]
                batches.append(
                    Batch(
                        updates=part, checkpoint=self._cp(cursor=checkpoint.cursor + at + len(part))
                    )
                )
        if malformed:
            batches[0].malformed = malformed
        for n, batch in enumerate(batches):
            if crash_after is not None and n == crash_after:
                raise RuntimeError("the fetcher died")
            yield batch

    def refetch(self, retry: dict[str, Any]) -> Iterator[Batch]:
        batch = self.source.retries.get(str(retry.get("page")))
        if batch is not None:
            yield batch

    def send_opinion(self, opinion: Opinion) -> None:
        src = self.source
        if src.fail_opinions > 0:
            src.fail_opinions -= 1
            raise ExchangeError("the fake source is down", hint="try later")
        src.sent.append(opinion)


def provenance(*path: str) -> Provenance:
    return Provenance(origin=path[0], path=tuple(path))
