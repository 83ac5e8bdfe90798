"""A fake StopNCII.org hash API on 127.0.0.1, speaking what python-threatexchange's
``StopNCIIAPI`` expects (``threatexchange/exchanges/clients/stopncii/api.py``):

* ``GET /v1/FetchHashes?startTimestamp=&pageSize=[&nextPageToken=]``: the records last
  modified at or after ``startTimestamp``, in ``lastModtimestamp`` order, ``pageSize`` at a
  time, with ``count``, ``nextPageToken``, ``nextSetTimestamp`` and ``hasMoreRecords``;
* ``POST /v1/SubmitFeedback``: ``{"count", "hashFeedbacks": [...]}``, recorded;
* every request needs ``Ocp-Apim-Subscription-Key`` and the endpoint's ``x-functions-key``
  (401 otherwise).

Tests steer it: ``fail`` queues statuses to answer before serving (429 with
``Retry-After``, 503), ``corrupt_times`` makes any page holding a record modified at one of
those times invalid JSON, ``refuse_tokens`` (or ``refuse_all_tokens``) answers 400 to those
page tokens (an expired cursor). ``requests`` records what arrived (method, path, query,
headers, JSON body).
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

from fakes.base import FakeJSONService, Seen, send_bytes, send_json

SUBSCRIPTION_KEY = "sub-key"
FETCH_KEY = "fetch-key"
FEEDBACK_KEY = "feedback-key"


@dataclass
class FakeStopNCII(FakeJSONService):
    prefix: ClassVar[str] = "/v1"

    records: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    corrupt_times: set[int] = field(default_factory=set)
    refuse_tokens: set[str] = field(default_factory=set)
    refuse_all_tokens: bool = False
    keys: dict[str, str] = field(
        default_factory=lambda: {"FetchHashes": FETCH_KEY, "SubmitFeedback": FEEDBACK_KEY}
    )
    subscription_key: str = SUBSCRIPTION_KEY

    def __post_init__(self) -> None:
        super().__post_init__()
        self._serial = itertools.count()  # every token is a new one, as a real cursor

    # -- data ------------------------------------------------------------------------------

    def put(
        self,
        hash_value: str,
        at: int,
        *,
        signal_type: str = "ImagePDQ",
        status: str = "Active",
        cases: dict[str, str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Add or replace a record (as StopNCII would after a change at ``at``)."""
        record = {
            "lastModtimestamp": at,
            "signalType": signal_type,
            "hashValue": hash_value,
            "hashStatus": status,
            "caseNumbers": cases if cases is not None else {f"case-{at}": status},
            "CSPFeedbacks": [],
            **extra,
        }
        with self.lock:
            self.records[(signal_type, hash_value)] = record
        return record

    def put_raw(self, key: tuple[str, str], record: dict[str, Any]) -> None:
        with self.lock:
            self.records[key] = record

    # -- serving -----------------------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler, request: Seen) -> None:
        path, query, headers = request.path, request.query, request.headers
        endpoint = path.rsplit("/", 1)[-1]
        if endpoint not in self.keys or not path.startswith("/v1/"):
            return send_json(h, 404, {"error": "no such endpoint"})
        if (
            headers.get("ocp-apim-subscription-key") != self.subscription_key
            or headers.get("x-functions-key") != self.keys[endpoint]
        ):
            return send_json(h, 401, {"statusCode": 401, "message": "Access denied"})
        if endpoint == "FetchHashes" and request.method == "GET":
            return self._fetch(h, query)
        if endpoint == "SubmitFeedback" and request.method == "POST":
            return send_json(h, 200, {"status": "ok"})
        return send_json(h, 405, {"error": "method not allowed"})

    def _fetch(self, h: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        try:
            start = int(query["startTimestamp"])
            size = int(query.get("pageSize", "800"))
        except (KeyError, ValueError):
            return send_json(h, 400, {"error": "startTimestamp required"})
        offset = 0
        if query.get("nextPageToken"):
            if self.refuse_all_tokens or query["nextPageToken"] in self.refuse_tokens:
                return send_json(h, 400, {"error": "invalid or expired nextPageToken"})
            try:
                token = json.loads(base64.urlsafe_b64decode(query["nextPageToken"]))
                offset, start = int(token["offset"]), int(token["start"])
            except (ValueError, KeyError):
                return send_json(h, 400, {"error": "invalid nextPageToken"})
        with self.lock:
            listed = sorted(
                (r for r in self.records.values() if r["lastModtimestamp"] >= start),
                key=lambda r: (
                    r["lastModtimestamp"],
                    str(r.get("signalType")),
                    str(r.get("hashValue")),
                ),
            )
        page = listed[offset : offset + size]
        more = offset + size < len(listed)
        next_token = None
        if more:
            next_token = base64.urlsafe_b64encode(
                json.dumps(
                    {"offset": offset + size, "start": start, "n": next(self._serial)}
                ).encode()
            ).decode()
        body = {
            "count": len(page),
            "nextPageToken": next_token,
            "nextSetTimestamp": page[-1]["lastModtimestamp"] if page else start,
            "hasMoreRecords": more,
            "hashRecords": page,
        }
        if any(r["lastModtimestamp"] in self.corrupt_times for r in page):
            text = json.dumps(body)
            return send_bytes(h, 200, text[: len(text) // 2].encode())
        return send_json(h, 200, body)
