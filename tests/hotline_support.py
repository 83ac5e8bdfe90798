"""What the hotline's end-to-end tests stand up on loopback: a web site whose pages and media
the test changes while it runs, a fake RDAP service, .mmdb databases built on the spot, and a
real SMTP server that keeps what it receives.

``with Site() as site: site.page("/p", html); site.media("/a.png", data); site.gone("/a.png")``
"""

from __future__ import annotations

import email
import io
import json
import socket
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def benign_png(seed: int, side: int = 256) -> bytes:
    """A benign synthetic picture (smooth gradients and blocks), distinct per seed."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((side, side), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


class _Server:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hits: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with owner.lock:
                    owner.hits.append(self.path)
                status, headers, body = owner.answer(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


class Site(_Server):
    """Pages, media and redirects served on 127.0.0.1 (reach it through a host name the
    test's resolver maps to 127.0.0.1, with ``url_allowlist`` allowing it)."""

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def page(self, path: str, html: str) -> None:
        self.routes[path] = (200, {"Content-Type": "text/html; charset=utf-8"}, html.encode())

    def media(self, path: str, data: bytes, content_type: str = "image/png") -> None:
        self.routes[path] = (200, {"Content-Type": content_type}, data)

    def redirect(self, path: str, to: str) -> None:
        self.routes[path] = (302, {"Location": to}, b"")

    def gone(self, path: str) -> None:
        self.routes.pop(path, None)

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            found = self.routes.get(path.split("?")[0])
        return found or (404, {"Content-Type": "text/plain"}, b"not found")


class FakeRdap(_Server):
    """RDAP (RFC 9083) for IP networks: every address answers one network with an abuse
    entity whose vCard carries ``email``."""

    def __init__(self, email: str, *, name: str = "EXAMPLE-NET", country: str = "MX") -> None:
        super().__init__()
        self.email = email
        self.name = name
        self.country = country
        self.url = f"http://127.0.0.1:{self.port}"

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if not path.startswith("/ip/"):
            return 404, {"Content-Type": "application/rdap+json"}, b"{}"
        body = {
            "objectClassName": "ip network",
            "handle": "NET-127-0-0-0-1",
            "name": self.name,
            "country": self.country,
            "startAddress": "127.0.0.0",
            "endAddress": "127.255.255.255",
            "entities": [
                {
                    "objectClassName": "entity",
                    "handle": "ABUSE-1",
                    "roles": ["abuse"],
                    "vcardArray": [
                        "vcard",
                        [
                            ["version", {}, "text", "4.0"],
                            ["fn", {}, "text", "Abuse desk"],
                            ["email", {}, "text", self.email],
                        ],
                    ],
                }
            ],
        }
        return 200, {"Content-Type": "application/rdap+json"}, json.dumps(body).encode()


def build_mmdb(path: Path, database_type: str, networks: dict[str, dict[str, Any]]) -> Path:
    """Write a MaxMind-format database mapping each CIDR to its record."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type)
    for cidr, record in networks.items():
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path


class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Message] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.messages.append(email.message_from_bytes(envelope.content))
                return "250 OK"

        with socket.socket() as probe:  # aiosmtpd needs a port number, not 0
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.controller.port}"
