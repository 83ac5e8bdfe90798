"""A web site on loopback for the hotline crawl's tests and benchmark: pages, benign synthetic
images, redirects, broken links and hostile answers, served from memory by a threaded
``http.server``.

    with Site() as site:
        site.page("/", '<img src="/a.png">')
        site.add("/a.png", image_bytes(1), "image/png")
        site.url("/")

Routes are looked up by path (query included); a ``routes`` callable may answer paths it
was not given (the benchmark's 50,000 images). Every request is counted per path.
"""

from __future__ import annotations

import io
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image, ImageDraw

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Route:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    location: str | None = None
    """A redirect's target (with a 3xx ``status``)."""
    endless: bool = False
    """Stream ``body`` over and over, with no Content-Length, until the client hangs up."""
    declared_length: int | None = None
    """A Content-Length to claim (a lie: only ``body`` is sent)."""


def image_bytes(seed: int, *, size: int | None = None, fmt: str = "PNG") -> bytes:
    """A distinct benign synthetic image: a solid colour with a few random rectangles."""
    rng = random.Random(seed)
    side = size or rng.randint(64, 256)
    image = Image.new("RGB", (side, side), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0 = rng.randrange(side), rng.randrange(side)
        x1, y1 = rng.randrange(x0, side + 1), rng.randrange(y0, side + 1)
        draw.rectangle((x0, y0, x1, y1), fill=tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


class Site:
    """A threaded HTTP server on 127.0.0.1 serving :class:`Route` s."""

    def __init__(self, routes: Callable[[str], Route | None] | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.fallback = routes
        self.hits: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        """Body bytes written per path (for the endless answers: what the client took)."""
        self.lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                site.serve(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes, content_type: str, **kw: object) -> None:
        self.routes[path] = Route(body, content_type, **kw)  # type: ignore[arg-type]

    def page(self, path: str, html: str) -> None:
        self.routes[path] = Route(html.encode())

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        self.routes[path] = Route(status=status, location=to)

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path
        with self.lock:
            self.hits[path] += 1
        route = self.routes.get(path) or (self.fallback(path) if self.fallback else None)
        if route is None:
            route = Route(b"<h1>not found</h1>", status=404)
        try:
            request.send_response(route.status)
            if route.location is not None:
                request.send_header("Location", route.location)
            request.send_header("Content-Type", route.content_type)
            if route.declared_length is not None:
                request.send_header("Content-Length", str(route.declared_length))
            elif not route.endless:
                request.send_header("Content-Length", str(len(route.body)))
            request.end_headers()
            if route.endless:
                chunk = (route.body or b"\0") * max(1, CHUNK // max(1, len(route.body)))
                while True:
                    request.wfile.write(chunk)
                    with self.lock:
                        self.sent[path] += len(chunk)
            else:
                request.wfile.write(route.body)
                with self.lock:
                    self.sent[path] += len(route.body)
        except OSError:
            return  # the client hung up (what a size cap or deadline does)
