"""A fake of Meta's Graph API for ThreatExchange on 127.0.0.1, speaking what
python-threatexchange's ``ThreatExchangeAPI`` expects
(``threatexchange/exchanges/clients/fb_threatexchange/api.py``):

* ``GET /v26.0/{privacy_group}/threat_updates/?access_token=&start_time=&stop_time=&limit=
  &fields=[&after=]``: the indicators last updated in ``[start_time, stop_time)``, in
  ``last_updated`` order, ``limit`` at a time, with ``paging.next`` (a full URL carrying the
  token, as the Graph API sends it) while more remain;
* ``GET /v26.0/{indicator_id}?fields=descriptors...``: the indicator's descriptors;
* ``POST /v26.0/{descriptor_id}`` with form field ``reactions``: recorded;
* a wrong token gets HTTP 400 ``{"error": {"type": "OAuthException", "code": 190}}``, an
  unknown privacy group HTTP 400 ``GraphMethodException`` code 100, as the Graph API does.

Tests steer it: ``fail`` queues statuses (429 with ``Retry-After``, 5xx; 4 is the Graph
API's throttling error, HTTP 400 code 4), ``corrupt_times``
makes any page holding an update at one of those times invalid JSON, ``refuse_cursors`` (or
``refuse_all_cursors``) answers 400 to those ``after`` cursors. ``requests`` records what
arrived.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode

from fakes.base import FakeJSONService, Seen, send_bytes, send_json

APP_ID = "1234567890"
TOKEN = f"{APP_ID}|s3cr3t-app-secret-of-the-test-app"
PRIVACY_GROUP = 303636684709969
OTHER_APP = "9876543210"


@dataclass
class FakeThreatExchange(FakeJSONService):
    prefix: ClassVar[str] = "/v26.0"

    updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    corrupt_times: set[int] = field(default_factory=set)
    refuse_cursors: set[str] = field(default_factory=set)
    refuse_all_cursors: bool = False
    token: str = TOKEN
    privacy_group: int = PRIVACY_GROUP

    def __post_init__(self) -> None:
        super().__post_init__()
        self._ids = itertools.count(1_000_000_000_000)
        self._serial = itertools.count()

    # -- data ---------------------------------------------------------------------------------

    def put(
        self,
        indicator: str,
        at: int,
        *,
        type: str = "HASH_PDQ",
        id: str | None = None,
        should_delete: bool = False,
        owner: str = OTHER_APP,
        tags: list[str] | None = None,
        status: str = "MALICIOUS",
    ) -> dict[str, Any]:
        """Add or replace an indicator update; returns it (its ``id`` is the record id)."""
        ident = id or str(next(self._ids))
        update = {
            "id": ident,
            "indicator": indicator,
            "type": type,
            "last_updated": at,
            "should_delete": should_delete,
            "descriptors": {
                "data": [
                    {
                        "id": str(int(ident) + 1),
                        "owner": {"id": owner},
                        "tags": tags if tags is not None else ["csam"],
                        "status": status,
                        "reactions": [],
                    }
                ]
            },
        }
        with self.lock:
            self.updates[ident] = update
        return update

    def put_raw(self, ident: str, update: dict[str, Any]) -> None:
        with self.lock:
            self.updates[ident] = update

    # -- serving ------------------------------------------------------------------------------

    def _read_body(self, data: bytes) -> Any:
        """A form, as the Graph API reads a POST's."""
        return {k: v[-1] for k, v in parse_qs(data.decode("utf-8", "replace")).items()}

    def _parameters(self, query: dict[str, str], body: Any) -> dict[str, str]:
        return {**query, **body} if body is not None else query  # the Graph API reads either

    def _error_body(self, message: str) -> Any:
        return {"error": {"message": message}}

    def _answer_failure(self, h: BaseHTTPRequestHandler, status: int) -> None:
        if status == 4:  # the Graph API's own throttling: HTTP 400 with error code 4
            error = {"message": "Application request limit reached", "code": 4}
            return send_json(h, 400, {"error": {**error, "type": "OAuthException"}})
        return super()._answer_failure(h, status)

    def _serve(self, h: BaseHTTPRequestHandler, request: Seen) -> None:
        query, method = request.query, request.method
        if query.get("access_token") != self.token:
            return send_json(
                h,
                400,
                {
                    "error": {
                        "message": "Invalid OAuth access token - Cannot parse access token",
                        "type": "OAuthException",
                        "code": 190,
                    }
                },
            )
        segments = [s for s in request.path.split("/") if s]
        if len(segments) >= 2 and segments[0] == "v26.0":
            if len(segments) == 3 and segments[2] == "threat_updates" and method == "GET":
                return self._threat_updates(h, segments[1], query)
            if len(segments) == 2 and method == "GET":
                return self._indicator(h, segments[1])
            if len(segments) == 2 and method == "POST":
                return send_json(h, 200, {"success": True})
        return _unknown(h)

    def _threat_updates(self, h: BaseHTTPRequestHandler, group: str, q: dict[str, str]) -> None:
        if group != str(self.privacy_group):
            return _unknown(h)
        start = int(q.get("start_time") or 0)
        stop = int(q["stop_time"]) if q.get("stop_time") else None
        limit = int(q.get("limit") or 25)
        offset = 0
        if q.get("after"):
            if self.refuse_all_cursors or q["after"] in self.refuse_cursors:
                return send_json(
                    h,
                    400,
                    {
                        "error": {
                            "message": "Invalid cursor",
                            "type": "GraphMethodException",
                            "code": 100,
                        }
                    },
                )
            offset = int(q["after"].split("-")[0])
        with self.lock:
            listed = sorted(
                (
                    u
                    for u in self.updates.values()
                    if start <= int(u.get("last_updated", 0))
                    and (stop is None or int(u.get("last_updated", 0)) < stop)
                ),
                key=lambda u: (int(u.get("last_updated", 0)), str(u.get("id"))),
            )
        page = listed[offset : offset + limit]
        body: dict[str, Any] = {"data": page}
        if offset + limit < len(listed):
            after = f"{offset + limit}-{next(self._serial)}"
            params = {k: v for k, v in q.items() if k != "after"}
            params["after"] = after
            body["paging"] = {
                "cursors": {"after": after},
                "next": f"{self.url}/{group}/threat_updates/?{urlencode(params)}",
            }
        if any(int(u.get("last_updated", 0)) in self.corrupt_times for u in page):
            text = json.dumps(body)
            return send_bytes(h, 200, text[: len(text) // 2].encode())
        return send_json(h, 200, body)

    def _indicator(self, h: BaseHTTPRequestHandler, ident: str) -> None:
        with self.lock:
            update = self.updates.get(ident)
        if update is None:
            return _unknown(h)
        return send_json(
            h, 200, {"id": ident, "descriptors": update.get("descriptors", {"data": []})}
        )


def _unknown(h: BaseHTTPRequestHandler) -> None:
    send_json(
        h,
        400,
        {
            "error": {
                "message": "Unsupported get request. Object does not exist",
                "type": "GraphMethodException",
                "code": 100,
            }
        },
    )
