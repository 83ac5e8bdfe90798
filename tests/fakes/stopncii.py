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
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SUBSCRIPTION_KEY = "sub-key"
FETCH_KEY = "fetch-key"
FEEDBACK_KEY = "feedback-key"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None


@dataclass
class FakeStopNCII:
    records: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    fail: list[int] = field(default_factory=list)
    corrupt_times: set[int] = field(default_factory=set)
    refuse_tokens: set[str] = field(default_factory=set)
    refuse_all_tokens: bool = False
    requests: list[Seen] = field(default_factory=list)
    keys: dict[str, str] = field(
        default_factory=lambda: {"FetchHashes": FETCH_KEY, "SubmitFeedback": FEEDBACK_KEY}
    )
    subscription_key: str = SUBSCRIPTION_KEY

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
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
        with self._lock:
            self.records[(signal_type, hash_value)] = record
        return record

    def put_raw(self, key: tuple[str, str], record: dict[str, Any]) -> None:
        with self._lock:
            self.records[key] = record

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    # -- serving -----------------------------------------------------------------------------

    def start(self) -> FakeStopNCII:
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

    def __enter__(self) -> FakeStopNCII:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        body: Any = None
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            raw = h.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self._lock:
            self.requests.append(Seen(method, parts.path, query, headers, body))
            status = self.fail.pop(0) if self.fail else None
        if status is not None:
            extra = {"Retry-After": "0"} if status == 429 else {}
            return _send(h, status, {"error": f"fake {status}"}, extra)
        endpoint = parts.path.rsplit("/", 1)[-1]
        if endpoint not in self.keys or not parts.path.startswith("/v1/"):
            return _send(h, 404, {"error": "no such endpoint"})
        if (
            headers.get("ocp-apim-subscription-key") != self.subscription_key
            or headers.get("x-functions-key") != self.keys[endpoint]
        ):
            return _send(h, 401, {"statusCode": 401, "message": "Access denied"})
        if endpoint == "FetchHashes" and method == "GET":
            return self._fetch(h, query)
        if endpoint == "SubmitFeedback" and method == "POST":
            return _send(h, 200, {"status": "ok"})
        return _send(h, 405, {"error": "method not allowed"})

    def _fetch(self, h: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        try:
            start = int(query["startTimestamp"])
            size = int(query.get("pageSize", "800"))
        except (KeyError, ValueError):
            return _send(h, 400, {"error": "startTimestamp required"})
        offset = 0
        if query.get("nextPageToken"):
            if self.refuse_all_tokens or query["nextPageToken"] in self.refuse_tokens:
                return _send(h, 400, {"error": "invalid or expired nextPageToken"})
            try:
                token = json.loads(base64.urlsafe_b64decode(query["nextPageToken"]))
                offset, start = int(token["offset"]), int(token["start"])
            except (ValueError, KeyError):
                return _send(h, 400, {"error": "invalid nextPageToken"})
        with self._lock:
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
            return _send_bytes(h, 200, text[: len(text) // 2].encode())
        return _send(h, 200, body)


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
