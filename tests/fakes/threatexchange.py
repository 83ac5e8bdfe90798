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
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

APP_ID = "1234567890"
TOKEN = f"{APP_ID}|s3cr3t-app-secret-of-the-test-app"
PRIVACY_GROUP = 303636684709969
OTHER_APP = "9876543210"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None


@dataclass
class FakeThreatExchange:
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail: list[int] = field(default_factory=list)
    corrupt_times: set[int] = field(default_factory=set)
    refuse_cursors: set[str] = field(default_factory=set)
    refuse_all_cursors: bool = False
    requests: list[Seen] = field(default_factory=list)
    token: str = TOKEN
    privacy_group: int = PRIVACY_GROUP

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
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
        with self._lock:
            self.updates[ident] = update
        return update

    def put_raw(self, ident: str, update: dict[str, Any]) -> None:
        with self._lock:
            self.updates[ident] = update

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v26.0"

    # -- serving ------------------------------------------------------------------------------

    def start(self) -> FakeThreatExchange:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeThreatExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        body: Any = None
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            raw = h.rfile.read(length).decode("utf-8", "replace")
            body = {k: v[-1] for k, v in parse_qs(raw).items()}
            query = {**query, **body}  # the Graph API reads parameters from either
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self._lock:
            self.requests.append(Seen(method, parts.path, query, headers, body))
            status = self.fail.pop(0) if self.fail else None
        if status == 4:  # the Graph API's own throttling: HTTP 400 with error code 4
            error = {"message": "Application request limit reached", "code": 4}
            return _send(h, 400, {"error": {**error, "type": "OAuthException"}})
        if status is not None:
            extra = {"Retry-After": "0"} if status == 429 else {}
            return _send(h, status, {"error": {"message": f"fake {status}"}}, extra)
        if query.get("access_token") != self.token:
            return _send(
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
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) >= 2 and segments[0] == "v26.0":
            if len(segments) == 3 and segments[2] == "threat_updates" and method == "GET":
                return self._threat_updates(h, segments[1], query)
            if len(segments) == 2 and method == "GET":
                return self._indicator(h, segments[1])
            if len(segments) == 2 and method == "POST":
                return _send(h, 200, {"success": True})
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
                return _send(
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
        with self._lock:
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
            return _send_bytes(h, 200, text[: len(text) // 2].encode())
        return _send(h, 200, body)

    def _indicator(self, h: BaseHTTPRequestHandler, ident: str) -> None:
        with self._lock:
            update = self.updates.get(ident)
        if update is None:
            return _unknown(h)
        return _send(h, 200, {"id": ident, "descriptors": update.get("descriptors", {"data": []})})


def _unknown(h: BaseHTTPRequestHandler) -> None:
    _send(
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


def _send(
    h: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    _send_bytes(h, status, json.dumps(body).encode(), headers)


def _send_bytes(
    h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str] | None = None
) -> None:
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        h.send_header(key, value)
    h.end_headers()
    h.wfile.write(data)
