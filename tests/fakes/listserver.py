"""A hash list served over HTTP on 127.0.0.1 with ETag/Last-Modified and conditional GET.

``with ListServer() as s: s.body = b"..."; s.url + "/list.txt"``; ``s.requests`` records
``(path, headers)``; ``s.fail_next(503)`` fails the next request; ``s.etags = False`` serves
no validators (so the client must fall back to the body's digest).
"""

from __future__ import annotations

import hashlib
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler

from fakes.base import LoopbackServer, QuietHandler


class ListServer(LoopbackServer):
    def __init__(self, body: bytes = b"") -> None:
        self.body = body
        self.etags = True
        self.modified = formatdate(1_700_000_000, usegmt=True)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._failures: list[int] = []
        super().__init__()
        self.url = self.origin

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    def fail_next(self, *statuses: int) -> None:
        with self.lock:
            self._failures.extend(statuses)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                with fake.lock:
                    fake.requests.append(
                        (self.path, {k.lower(): v for k, v in self.headers.items()})
                    )
                    failure = fake._failures.pop(0) if fake._failures else None
                if failure is not None:
                    self.send_response(failure)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fake.etags and self.headers.get("If-None-Match") == fake.etag:
                    self.send_response(304)
                    self.send_header("ETag", fake.etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(fake.body)))
                if fake.etags:
                    self.send_header("ETag", fake.etag)
                    self.send_header("Last-Modified", fake.modified)
                self.end_headers()
                self.wfile.write(fake.body)

        return Handler
