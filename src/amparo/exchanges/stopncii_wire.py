"""The wire side of the ``stopncii`` exchange (:mod:`amparo.exchanges.stopncii`): StopNCII's
``FetchHashes`` and ``SubmitFeedback`` as data. Its vocabulary (signal types, case statuses,
feedback values, header names, the base URL), mirrored from python-threatexchange's client
rather than imported, the checkpoint, and the reading of a page and of each hash record into
:class:`Update` and :class:`Malformed` records. No HTTP and no storage here: the exchange
module does the requests and explains why python-threatexchange's client is not used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from amparo.errors import AmparoError
from amparo.exchanges.model import Batch, Checkpoint, Malformed, Provenance, Update

BASE_URL = "https://api.stopncii.org/v1"
"""``StopNCIIAPI.BASE_URL``."""
DEFAULT_START_TIMESTAMP = 10
"""``StopNCIIAPI.DEFAULT_START_TIME``: a first fetch asks for everything since then."""
DEFAULT_PAGE_SIZE = 800
"""``StopNCIIAPI.fetch_hashes``' default page size."""
DEFAULT_SKIP_SECONDS = 3600
PAGE_TOKEN_TTL = timedelta(hours=1)
"""A page token older than this is not trusted (the API documents no lifetime)."""
STALE_AFTER = timedelta(days=30)
"""python-threatexchange's ``StopNCIICheckpoint.is_stale``."""

SUBSCRIPTION_HEADER = "Ocp-Apim-Subscription-Key"
FUNCTION_KEY_HEADER = "x-functions-key"

SIGNAL_TYPES = {"ImagePDQ": "pdq", "VideoMD5": "md5"}
"""StopNCII signal types Amparo matches, to Amparo's signal types (a video's MD5 is the MD5
of the file's bytes, which is Amparo's ``md5``)."""
OTHER_SIGNAL_TYPES = frozenset({"Unknown", "VideoTMK", "Text", "URL"})
"""Types StopNCII lists that Amparo does not match: counted as skipped."""
LIVE_STATUSES = frozenset({"Unknown", "Received", "Active"})
REMOVED_STATUSES = frozenset({"Withdrawn", "Deleted"})
"""``StopNCIICaseStatus`` values: the person withdrew the hash or it was deleted."""
FEEDBACK_VALUES = {"true_positive": "Blocked", "false_positive": "NotBlocked"}
"""Opinion verdicts to ``StopNCIICSPFeedbackValue``: a confirmed match was blocked; a false
positive was reviewed and not blocked."""


@dataclass
class StopNCIICheckpoint(Checkpoint):
    """Where a StopNCII fetch resumes (see the module docstring)."""

    start_timestamp: int = DEFAULT_START_TIMESTAMP
    """``startTimestamp`` of the paging run ``page_token`` belongs to."""
    page_token: str | None = None
    """``nextPageToken``: the run's next page; None when the run finished."""
    next_set_timestamp: int = DEFAULT_START_TIMESTAMP
    """``nextSetTimestamp``: where the next run starts once this one has finished."""

    def is_stale(self, now: datetime | None = None) -> bool:
        fetched = _parse_time(self.fetched_at)
        if fetched is None:
            return False
        return (now or datetime.now(fetched.tzinfo)) - fetched > STALE_AFTER

    def token_usable(self, now: datetime) -> bool:
        """The page token is young enough to continue the run with."""
        fetched = _parse_time(self.fetched_at)
        return bool(self.page_token) and fetched is not None and now - fetched < PAGE_TOKEN_TTL


# -- reading pages and records -------------------------------------------------------------


def read_page(response: httpx.Response) -> dict[str, Any] | str:
    """The page's fields, or why it cannot be read. ``_times`` lists each record's
    ``lastModtimestamp`` (None where unreadable) for the windows above."""
    try:
        data = json.loads(response.content)
    except ValueError as exc:
        return f"not JSON ({exc})"
    if not isinstance(data, dict):
        return "not a JSON object"
    records = data.get("hashRecords", [])
    if not isinstance(records, list):
        return "hashRecords is not a list"
    more = data.get("hasMoreRecords")
    if not isinstance(more, bool):
        return "hasMoreRecords missing"
    token = data.get("nextPageToken")
    if token is not None and not isinstance(token, str):
        return "nextPageToken is not a string"
    if more and not token:
        return "hasMoreRecords without a nextPageToken"
    next_set = data.get("nextSetTimestamp")
    if not isinstance(next_set, int) or isinstance(next_set, bool):
        return "nextSetTimestamp missing"
    times = [_record_time(raw) for raw in records]
    return {
        "hashRecords": records,
        "hasMoreRecords": more,
        "nextPageToken": token,
        "nextSetTimestamp": next_set,
        "_times": times,
    }


def _record_time(raw: Any) -> int | None:
    if isinstance(raw, dict):
        value = raw.get("lastModtimestamp")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def record_id_of(raw: Any) -> str | None:
    """``{signalType}:{hashValue}``: StopNCII keys its records by type and hash."""
    if not isinstance(raw, dict):
        return None
    kind, value = raw.get("signalType"), raw.get("hashValue")
    if isinstance(kind, str) and isinstance(value, str) and kind and value:
        return f"{kind}:{value}"
    return None


def _read_record(raw: Any) -> Update | Malformed | None:
    """One ``hashRecords`` item as an upsert or a deletion; a :class:`Malformed` when it
    cannot be read; None when its type is one Amparo does not match (skipped)."""
    record_id = record_id_of(raw)
    at = _record_time(raw)
    retry: dict[str, Any] | None = None
    if at is not None:
        retry = {"start_timestamp": at, "stop_timestamp": at + 1}
    if record_id is not None and retry is not None:
        retry["record_id"] = record_id
    text = Malformed.cut(json.dumps(raw, sort_keys=True, default=str))

    def bad(reason: str) -> Malformed:
        return Malformed(reason=reason, raw=text, record_id=record_id, retry=retry)

    if record_id is None or not isinstance(raw, dict):
        return bad("record without signalType or hashValue")
    if at is None:
        return bad("record without lastModtimestamp")
    kind, value = raw["signalType"], raw["hashValue"]
    status = raw.get("hashStatus")
    if status not in LIVE_STATUSES and status not in REMOVED_STATUSES:
        return bad(f"unknown hashStatus {status!r}")
    if kind not in SIGNAL_TYPES:
        if kind in OTHER_SIGNAL_TYPES:
            return None
        return bad(f"unknown signalType {kind!r}")
    if status in REMOVED_STATUSES:
        return Update(record_id=record_id, deleted=True)
    try:
        from amparo.signals import normalize_signal

        signal_type, signal = normalize_signal(SIGNAL_TYPES[kind], value)
    except AmparoError as exc:
        return bad(f"invalid {kind} hash: {exc}")
    cases = raw.get("caseNumbers") or {}
    source_ids = tuple(sorted(str(case) for case in cases)) if isinstance(cases, dict) else ()
    return Update(
        record_id=record_id,
        signal_type=signal_type,
        signal=signal,
        category="ncii",
        source_ids=source_ids,
        provenance=Provenance(origin="stopncii", classification="NCII"),
    )


def read_batch(records: list[Any]) -> Batch:
    """A page's ``hashRecords`` as a batch: upserts and deletions (withdrawn or deleted
    hashes), quarantined records, and the count of types Amparo does not match (skipped)."""
    batch = Batch()
    for raw in records:
        item = _read_record(raw)
        if isinstance(item, Update):
            batch.updates.append(item)
        elif isinstance(item, Malformed):
            batch.malformed.append(item)
        else:
            batch.skipped += 1
    return batch


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
