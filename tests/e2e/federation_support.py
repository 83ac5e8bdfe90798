"""A man in the middle for federation tests: a loopback HTTP proxy that forwards to a
publisher and can flip one byte of a feed page's body or replay an older page."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class Tamper:
    """What the proxy does to feed pages (``GET /v1/feeds/<name>?nonce=...``)."""

    def __init__(self) -> None:
        self.flip = False
        """Flip one byte inside the signed page (a hash digit) in transit."""
        self.replay = False
        """Answer with the first page ever seen instead of the real answer."""
        self.first_page: bytes | None = None
        self.pages = 0


@contextmanager
def proxy(upstream: str, tamper: Tamper) -> Iterator[str]:
    """Run the proxy; yields its base URL (http://127.0.0.1:PORT)."""
    client = httpx.Client(base_url=upstream, timeout=30)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def _forward(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("host", "content-length", "connection")
            }
            upstream_response = client.request(method, self.path, content=body, headers=headers)
            data = upstream_response.content
            if "nonce=" in self.path and upstream_response.status_code == 200:
                tamper.pages += 1
                if tamper.first_page is None:
                    tamper.first_page = data
                if tamper.replay:
                    data = tamper.first_page
                elif tamper.flip:
                    data = _flip(data)
            self.send_response(upstream_response.status_code)
            self.send_header("content-type", upstream_response.headers.get("content-type", ""))
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._forward("GET")

        def do_POST(self) -> None:
            self._forward("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        client.close()


def _flip(data: bytes) -> bytes:
    """Change one hex digit of the first signal in the page: still valid JSON, a different
    hash, so only the signature can tell."""
    marker = b'"signal":"'
    at = data.find(marker)
    if at < 0:
        marker = b'"signal": "'
        at = data.find(marker)
    if at < 0:
        return data[:-2] + bytes([data[-2] ^ 1]) + data[-1:]
    i = at + len(marker)
    digit = data[i : i + 1]
    swapped = b"1" if digit != b"1" else b"2"
    return data[:i] + swapped + data[i + 1 :]
