"""What the fakes share: an HTTP server on 127.0.0.1 serving from a thread while a ``with``
block lasts (:class:`LoopbackServer`), and what the JSON services' fakes (StopNCII,
ThreatExchange) do alike (:class:`FakeJSONService`): every request recorded as a
:class:`Seen`, the statuses a test queues in ``fail`` answered before serving, JSON answers.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing (the tests' output stays theirs)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackServer:
    """An HTTP server on a free port of 127.0.0.1, bound at once (``port`` and ``origin`` are
    known before it serves), serving from a daemon thread between ``start`` and ``stop`` (or
    in a ``with`` block). A subclass gives the request handler (``_handler``); ``lock`` guards
    what the test and the serving threads share."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() would wait for a serve_forever never begun
            self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@dataclass
class Seen:
    """A request as a fake got it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None


@dataclass
class FakeJSONService(LoopbackServer):
    """A JSON API under ``prefix``; a subclass serves what is not a queued failure
    (``_serve``) and may read bodies (``_read_body``) and parameters (``_parameters``) its
    service's way."""

    prefix: ClassVar[str] = ""

    fail: list[int] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        LoopbackServer.__init__(self)

    @property
    def url(self) -> str:
        return self.origin + self.prefix

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        return Handler

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        body = self._read_body(h.rfile.read(length)) if length else None
        query = self._parameters(query, body)
        headers = {k.lower(): v for k, v in h.headers.items()}
        request = Seen(method, parts.path, query, headers, body)
        with self.lock:
            self.requests.append(request)
            status = self.fail.pop(0) if self.fail else None
        if status is not None:
            return self._answer_failure(h, status)
        return self._serve(h, request)

    def _read_body(self, data: bytes) -> Any:
        """A request's body: JSON, or its text when it is not JSON."""
        try:
            return json.loads(data)
        except ValueError:
            return data.decode("utf-8", "replace")

    def _parameters(self, query: dict[str, str], body: Any) -> dict[str, str]:
        """The parameters the service reads (here: the query string's)."""
        return query

    def _error_body(self, message: str) -> Any:
        return {"error": message}

    def _answer_failure(self, h: BaseHTTPRequestHandler, status: int) -> None:
        """A queued failure; a 429 asks to retry at once (``Retry-After: 0``)."""
        extra = {"Retry-After": "0"} if status == 429 else {}
        send_json(h, status, self._error_body(f"fake {status}"), extra)

    def _serve(self, h: BaseHTTPRequestHandler, request: Seen) -> None:
        """Answer a request that is not a queued failure."""
        raise NotImplementedError


def send_json(
    h: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    send_bytes(h, status, json.dumps(body).encode(), headers)


def send_bytes(
    h: BaseHTTPRequestHandler,
    status: int,
    data: bytes,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        h.send_header(key, value)
    h.end_headers()
    h.wfile.write(data)
