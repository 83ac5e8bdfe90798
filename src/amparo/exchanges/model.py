"""The exchange vocabulary (python-threatexchange's, where it has one): an *exchange* is a
kind of source (a file, NCMEC, StopNCII, ThreatExchange, another Amparo); a *collaboration*
is one configured use of it that feeds a bank. Plain data, no storage, no HTTP.

An exchange turns "what changed since this checkpoint" into an ordered stream of
:class:`Batch` es; the fetch runner commits each batch's updates together with the batch's
checkpoint, so a fetch that dies resumes from the last committed batch and nothing is lost.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from amparo.clock import utc_now

OPINION_VERDICTS = ("true_positive", "false_positive")
"""What a reviewer's decision tells a source: ``confirm`` -> true positive,
``false_positive`` -> false positive."""


@dataclass(frozen=True)
class Provenance:
    """Where an entry came from and who vouches for it; survives re-sharing (federation).

    ``path`` lists the organisations the entry passed through, origin first: a subscriber
    whose own organisation is on the path does not import it again (no A -> B -> A loops)."""

    origin: str
    """The organisation that first listed the hash (``organisation_id`` of an Amparo, or
    the exchange's name for NCMEC, StopNCII, ...)."""
    verified_by: str | None = None
    """Who verified it there (a reviewer id or role; never a person's private details)."""
    classification: str | None = None
    """e.g. ``A1``..``B2`` or the source's own category."""
    jurisdiction: str | None = None
    """ISO 3166 code of the law under which it was assessed (``MX``, ``BR``; ``INT`` for
    baseline: illegal internationally)."""
    legal_basis: str | None = None
    at: str | None = None
    """When it was verified (ISO 8601 UTC)."""
    path: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = list(self.path)
        return {k: v for k, v in data.items() if v not in (None, [], ())}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Provenance:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["path"] = tuple(str(p) for p in known.get("path", ()) or ())
        return cls(**known)

    def through(self, organisation: str) -> Provenance:
        """This provenance as re-shared by ``organisation`` (appended to the path)."""
        if self.path and self.path[-1] == organisation:
            return self
        path = self.path or (self.origin,)
        if path[-1] != organisation:
            path = (*path, organisation)
        return Provenance(**{**asdict(self), "path": path})


@dataclass(frozen=True)
class Update:
    """One record of a source: an upsert of a hash, or the record's deletion/withdrawal.

    ``record_id`` is the source's own id for the record (NCMEC's entry id, StopNCII's hash,
    a ThreatExchange indicator id, a file line's signal); updates of the same id replace each
    other, a deletion removes the record. A deletion needs only ``record_id``."""

    record_id: str
    signal_type: str | None = None
    signal: str | None = None
    deleted: bool = False
    category: str | None = None
    tags: tuple[str, ...] = ()
    source_ids: tuple[str, ...] = ()
    """Other ids the source gives the record (member ids, case numbers)."""
    provenance: Provenance | None = None


@dataclass(frozen=True)
class Malformed:
    """A record or a whole page that could not be read: quarantined (kept, counted, shown in
    status, retried on a later fetch) while the rest of the fetch continues."""

    reason: str
    raw: str = ""
    """The offending text, cut to a few kilobytes."""
    record_id: str | None = None
    """None for a whole page."""
    retry: dict[str, Any] | None = None
    """What the exchange needs to fetch it again (e.g. a page URL); None: not refetchable."""

    MAX_RAW: ClassVar[int] = 4096

    @staticmethod
    def cut(raw: str | bytes) -> str:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        return text[: Malformed.MAX_RAW]


@dataclass
class Checkpoint:
    """How far a collaboration has fetched. Each exchange subclasses it with its own fields
    (a cursor, a timestamp, a page URL); stored as JSON with the batch it belongs to.

    ``is_stale`` says the source can no longer continue from it (an expired paging URL, a
    cursor older than the source keeps): the runner then fetches everything again and
    removes what the full fetch no longer lists (converging without churn: unchanged entries
    keep their change-log position)."""

    fetched_at: str | None = None
    """When the batch this checkpoint closes was fetched (ISO 8601 UTC)."""

    def is_stale(self, now: datetime | None = None) -> bool:
        return False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    @staticmethod
    def now() -> str:
        return utc_now().isoformat()


@dataclass
class Batch:
    """One unit of progress: updates and malformed items, committed together with
    ``checkpoint`` (the checkpoint to resume from once this batch is stored).

    ``complete`` marks the last batch of a *full* fetch (a file, a list re-fetched after a
    stale checkpoint): records of the collaboration not seen since the full fetch began are
    then withdrawn."""

    updates: list[Update] = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    full: bool = False
    """This batch belongs to a full fetch (everything the source lists)."""
    complete: bool = False
    """Last batch of a full fetch: what the fetch did not list is withdrawn."""
    unchanged: bool = False
    """The source said nothing changed (a 304): the runner only records the check."""
    skipped: int = 0
    """Records the source listed in a type Amparo does not match (e.g. StopNCII's
    ``VideoTMK``, ThreatExchange's ``URI``): counted, neither stored nor quarantined."""


@dataclass(frozen=True)
class Opinion:
    """A reviewer's verdict on an entry that came from a source, sent back to it."""

    record_id: str
    signal_type: str
    signal: str
    verdict: str
    """One of :data:`OPINION_VERDICTS`."""
    reason: str | None = None
    """Why (e.g. NCMEC's reason id for a negative feedback, ``not_illegal``)."""
    reviewer: str | None = None
    at: str | None = None


@dataclass(frozen=True)
class Credentials:
    """A collaboration's secret, read when needed from where its settings point (a file or
    an environment variable); never stored in the database."""

    values: dict[str, str]

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)

    def require(self, key: str, hint: str) -> str:
        from amparo.errors import CredentialsError

        value = self.values.get(key)
        if not value:
            raise CredentialsError(f"the collaboration's credentials lack {key!r}", hint=hint)
        return value


@dataclass
class Collaboration:
    """A configured use of an exchange that feeds one bank."""

    name: str
    exchange: str
    """The exchange type: ``file``, ``url``, ``ncmec``, ``stopncii``, ``threatexchange``,
    ``amparo``."""
    bank: str
    settings: dict[str, Any] = field(default_factory=dict)
    """The exchange's own settings (a path, a URL, an environment, a feed name)."""
    credentials: str | None = None
    """Where the secret is: ``file:/path`` or ``env:AMPARO_SECRET_NAME`` (a JSON object or, for a
    single secret, the bare value); None: the exchange needs none."""
    interval_seconds: int = 3600
    """How often ``amparo serve`` fetches it."""
    enabled: bool = True
    feedback: bool = True
    """Send reviewers' opinions back to the source when the exchange supports it."""
    id: int | None = None
    created_at: datetime | None = None


@dataclass
class CollaborationStatus:
    """What ``amparo exchange show`` and ``/v1/exchanges/{name}`` report."""

    collaboration: Collaboration
    checkpoint: dict[str, Any] | None = None
    last_fetch_at: datetime | None = None
    """End of the last fetch that finished without error."""
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    lag_seconds: float | None = None
    """Now minus the last successful fetch."""
    entries_added: int = 0
    entries_removed: int = 0
    records: int = 0
    """Live records the collaboration holds."""
    quarantined: int = 0
    pending_opinions: int = 0
    lease_holder: str | None = None
    next_fetch_at: datetime | None = None


@dataclass
class FetchResult:
    """What one fetch did."""

    collaboration: str
    fetched: bool = True
    """False when another process held the lease (this one skipped)."""
    batches: int = 0
    upserts: int = 0
    deletions: int = 0
    added: int = 0
    removed: int = 0
    quarantined: int = 0
    skipped_loops: int = 0
    full: bool = False
    error: str | None = None
    bank: str | None = None
    """The bank the collaboration feeds."""
    seq_from: int | None = None
    """The entry change-log position before the fetch: what it added or removed is in
    ``store.changes.since(seq_from)`` (for after-fetch listeners such as retro matching)."""


@dataclass(frozen=True)
class QuarantinedItem:
    """A malformed record or page kept for a later retry (``amparo exchange show``)."""

    id: int
    collaboration: str
    reason: str
    raw: str
    record_id: str | None
    first_seen: datetime
    last_tried: datetime
    attempts: int
    resolved: bool = False
