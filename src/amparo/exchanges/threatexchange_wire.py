"""The wire side of the ``threatexchange`` exchange (:mod:`amparo.exchanges.threatexchange`):
the Graph API's ``threat_updates`` as data. Its constants (the fields asked for, the indicator
types Amparo matches, the reactions, the error codes), the checkpoint, the reading of a page
and of each update into :class:`Update` and :class:`Malformed` records, and the paging URLs
(kept without the access token). No HTTP and no storage here: the exchange module does the
requests and explains why python-threatexchange's client is not used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from amparo.errors import AmparoError
from amparo.exchanges.model import Batch, Checkpoint, Malformed, Provenance, Update

BASE_URL = "https://graph.facebook.com/v26.0"
"""``ThreatExchangeAPI._TE_BASE_URL``."""
DEFAULT_PAGE_SIZE = 500
DEFAULT_SKIP_SECONDS = 3600
CURSOR_TTL = timedelta(hours=1)
STALE_AFTER = timedelta(days=85)

FIELDS = (
    "id",
    "indicator",
    "type",
    "last_updated",
    "should_delete",
    "descriptors{id,reactions,owner{id},tags,status}",
)
"""``FBThreatExchangeIndicatorRecord.te_threat_updates_fields`` plus ``id`` (the record id)."""

INDICATOR_TYPES = {
    "HASH_PDQ": "pdq",
    "HASH_MD5": "md5",
    "HASH_VIDEO_MD5": "md5",
    "HASH_SHA1": "sha1",
    "HASH_SHA256": "sha256",
    "HASH_VIDEO_SHA256": "sha256",
}
REACTIONS = {"true_positive": "HELPFUL", "false_positive": "DISAGREE_WITH_TAGS"}
TOKEN_ERROR_CODES = frozenset({102, 104, 190})
"""Graph API error codes for a missing, invalid or expired access token."""
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})
"""Graph API error codes for throttling (sent as HTTP 400/403 with a JSON body)."""


@dataclass
class ThreatExchangeCheckpoint(Checkpoint):
    """Where a ThreatExchange fetch resumes (see the module docstring)."""

    update_time: int = 0
    """The latest ``last_updated`` read: the next run's ``start_time``."""
    next_url: str | None = None
    """The run's ``paging.next`` without the access token; None when the run finished."""

    def is_stale(self, now: datetime | None = None) -> bool:
        fetched = _parse_time(self.fetched_at)
        if fetched is None:
            return False
        return (now or datetime.now(fetched.tzinfo)) - fetched > STALE_AFTER

    def cursor_usable(self, now: datetime) -> bool:
        fetched = _parse_time(self.fetched_at)
        return bool(self.next_url) and fetched is not None and now - fetched < CURSOR_TTL


# -- reading pages and updates -----------------------------------------------------------------


def read_page(
    response: httpx.Response, base_url: str
) -> tuple[list[Any], list[int | None], str] | str:
    """``(data, each update's time, paging.next or "")``, or why the page is unreadable.
    A ``paging.next`` off ``base_url``'s host is unreadable: the token is never sent there."""
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        return f"not JSON ({exc})"
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return "no data list"
    paging = body.get("paging") or {}
    following = paging.get("next") if isinstance(paging, dict) else None
    if following is not None:
        if not isinstance(following, str):
            return "paging.next is not a URL"
        if _origin(following) != _origin(base_url):
            # Never send the token elsewhere.
            return f"paging.next leads to another host ({_origin(following)})"
    data: list[Any] = body["data"]
    return data, [_update_time(item) for item in data], following or ""


def read_batch(data: list[Any]) -> Batch:
    """A page's ``data`` as a batch: upserts and deletions, quarantined items, and the
    count of items of types Amparo does not match (skipped)."""
    batch = Batch()
    for raw in data:
        item = _read_update(raw)
        if isinstance(item, Update):
            batch.updates.append(item)
        elif isinstance(item, Malformed):
            batch.malformed.append(item)
        else:
            batch.skipped += 1
    return batch


def indicator_id(raw: dict[str, Any]) -> str | None:
    value = raw.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    return None


def _update_time(raw: Any) -> int | None:
    if not isinstance(raw, dict):
        return None
    value = raw.get("last_updated")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _read_update(raw: Any) -> Update | Malformed | None:
    """One ``threat_updates`` item as an upsert or a deletion; a :class:`Malformed` when it
    cannot be read; None when its type is one Amparo does not match (skipped)."""
    record_id = indicator_id(raw) if isinstance(raw, dict) else None
    at = _update_time(raw)
    retry: dict[str, Any] | None = None
    if at is not None:
        retry = {"start_time": at, "stop_time": at + 1}
        if record_id is not None:
            retry["record_id"] = record_id
    text = Malformed.cut(json.dumps(raw, sort_keys=True, default=str))

    def bad(reason: str) -> Malformed:
        return Malformed(reason=reason, raw=text, record_id=record_id, retry=retry)

    if not isinstance(raw, dict) or record_id is None:
        return bad("update without an indicator id")
    if at is None:
        return bad("update without last_updated")
    kind = raw.get("type")
    if not isinstance(kind, str) or not kind:
        return bad("update without a type")
    if kind not in INDICATOR_TYPES:
        return None
    descriptors = raw.get("descriptors")
    if raw.get("should_delete") or descriptors is None:
        return Update(record_id=record_id, deleted=True)
    if not isinstance(descriptors, dict) or not isinstance(descriptors.get("data"), list):
        return bad("descriptors is not a Graph API list")
    try:
        visible = [d for d in descriptors["data"] if isinstance(d, dict) and "owner" in d]
        tags = sorted({tag for d in visible for tag in _tags(d.get("tags"))})
        ids = tuple(f"descriptor:{d['id']}" for d in visible)
    except (KeyError, TypeError) as exc:
        return bad(f"unreadable descriptors ({exc})")
    if not visible:
        # No descriptor this app may see vouches for it (the client's "visibility bug").
        return Update(record_id=record_id, deleted=True)
    value = raw.get("indicator")
    if not isinstance(value, str):
        return bad("update without an indicator")
    try:
        from amparo.signals import normalize_signal

        signal_type, signal = normalize_signal(INDICATOR_TYPES[kind], value)
    except AmparoError as exc:
        return bad(f"invalid {kind} indicator: {exc}")
    statuses = {str(d.get("status")) for d in visible if d.get("status")}
    return Update(
        record_id=record_id,
        signal_type=signal_type,
        signal=signal,
        category=next(iter(statuses)) if len(statuses) == 1 else None,
        tags=tuple(tags),
        source_ids=ids,
        provenance=Provenance(origin="threatexchange"),
    )


def _tags(value: Any) -> list[str]:
    """Descriptor tags: a list of names, or the Graph API's ``{"data": [{"text": ...}]}``."""
    if isinstance(value, dict):
        value = [t.get("text") for t in value.get("data", []) if isinstance(t, dict)]
    if not isinstance(value, list):
        return []
    return [str(t) for t in value if t]


def graph_error(response: httpx.Response) -> tuple[int | None, str, str]:
    try:
        error = json.loads(response.content)["error"]
        return (
            int(error.get("code")) if error.get("code") is not None else None,
            str(error.get("type", "")),
            str(error.get("message", ""))[:200],
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, "", response.text[:200]


# -- URLs ------------------------------------------------------------------------------------------


def split_url(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    params.pop("access_token", None)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), params


def strip_token(url: str) -> str:
    """The paging URL without its access token: checkpoints are stored, secrets are not."""
    base, params = split_url(url)
    return f"{base}?{urlencode(params)}" if params else base


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
