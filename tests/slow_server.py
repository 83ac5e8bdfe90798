"""A hostile HTTP server on loopback that trickles its response headers, one byte at a time.

Each byte arrives well within any per-read timeout, so only a total deadline ends a request to
it. It serves every connection in its own thread and counts the connections it has seen.
"""

from __future__ import annotations

import socket
import threading
import time

HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n" + b"X-Pad: " + b"x" * 200 + b"\r\n"


class Trickler:
    """``with Trickler(interval=0.5) as t: t.url`` -- a server that never finishes its headers
    (it sends one more byte every ``interval`` seconds for up to ``max_seconds``)."""

    def __init__(self, interval: float = 0.5, max_seconds: float = 60.0) -> None:
        self.interval = interval
        self.max_seconds = max_seconds
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.connections = 0
        self.open = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Trickler:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        self.sock.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.open += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            end = time.monotonic() + self.max_seconds
            for byte in HEADERS:
                if self.stopping.wait(self.interval) or time.monotonic() > end:
                    return
                conn.sendall(bytes([byte]))
        except OSError:
            return  # the client gave up and closed the connection: what a deadline does
        finally:
            conn.close()
            with self.lock:
                self.open -= 1
