"""What the hotline's tests and benchmark stand up on loopback: a web site whose pages and
media the test changes while it runs (also broken links, redirect loops and hostile answers),
a fake RDAP service, .mmdb databases built on the spot, a real SMTP server that keeps what it
receives, and a hotline service on a test clock.

    with Site() as site:
        site.page("/", '<img src="/a.png">')
        site.media("/a.png", image_bytes(1))
        site.url("/")
        site.gone("/a.png")
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import numpy as np
from PIL import Image, ImageDraw

from amparo.app import Amparo
from amparo.clock import Clock, utc_now
from amparo.hotline.model import HotlineItem
from amparo.hotline.service import HotlineService
from amparo.url_policy import Resolver, system_resolver

RDAP_JSON = "application/rdap+json"


def benign_png(seed: int, side: int = 256) -> bytes:
    """A benign synthetic picture (smooth gradients and blocks), distinct per seed."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((side, side), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


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


class _Loopback:
    """A threaded HTTP server on 127.0.0.1 answering GETs with what :meth:`route` gives
    (404 for ``None``). Every request is counted: ``hits`` per path, ``paths`` in order, and
    ``sent`` the body bytes written per path (for endless answers: what the client took)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hits: Counter[str] = Counter()
        self.paths: list[str] = []
        self.sent: Counter[str] = Counter()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.serve(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str) -> Route | None:
        raise NotImplementedError

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path
        with self.lock:
            self.hits[path] += 1
            self.paths.append(path)
        route = self.route(path) or Route(b"<h1>not found</h1>", status=404)
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


class Site(_Loopback):
    """Pages, media, redirects, broken links and hostile answers served on 127.0.0.1 from
    memory (reach it through a host name the test's resolver maps to 127.0.0.1, with
    ``url_allowlist`` allowing it). Routes are looked up by path, query included, then
    without the query; a ``routes`` callable may answer paths it was not given (the crawl
    benchmark's 50,000 images)."""

    def __init__(self, routes: Callable[[str], Route | None] | None = None) -> None:
        super().__init__()
        self.routes: dict[str, Route] = {}
        self.fallback = routes

    def add(self, path: str, body: bytes, content_type: str, **kw: object) -> None:
        self.routes[path] = Route(body, content_type, **kw)  # type: ignore[arg-type]

    def page(self, path: str, html: str) -> None:
        self.routes[path] = Route(html.encode())

    def media(self, path: str, data: bytes, content_type: str = "image/png") -> None:
        self.routes[path] = Route(data, content_type)

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        self.routes[path] = Route(status=status, location=to)

    def gone(self, path: str) -> None:
        self.routes.pop(path, None)

    def route(self, path: str) -> Route | None:
        found = self.routes.get(path) or self.routes.get(path.split("?")[0])
        return found or (self.fallback(path) if self.fallback else None)


class FakeRdap(_Loopback):
    """RDAP (RFC 9083) for IP networks: ``/ip/{address}`` answers ``answer(address)``, by
    default one network with an abuse entity whose vCard carries ``email``; other paths 404.
    ``paths`` lists what it was asked."""

    def __init__(
        self,
        email: str = "abuse@example.net",
        *,
        name: str = "EXAMPLE-NET",
        country: str = "MX",
        answer: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.email = email
        self.name = name
        self.country = country
        self.answer = answer or self.network
        self.url = self.base

    def route(self, path: str) -> Route | None:
        if not path.startswith("/ip/"):
            return Route(b"{}", RDAP_JSON, status=404)
        return Route(json.dumps(self.answer(path.removeprefix("/ip/"))).encode(), RDAP_JSON)

    def network(self, address: str) -> dict[str, Any]:
        return {
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


def build_mmdb(path: Path, database_type: str, networks: dict[str, dict[str, Any]]) -> Path:
    """Write a MaxMind-format database mapping each CIDR to its record."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type)
    for cidr, record in networks.items():
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for servers that need a number)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every envelope it accepts. Its
    port is chosen up front, so a test can use it before :meth:`start` (a server that is
    down, then up); ``with SmtpSink() as smtp`` starts and stops it."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.port = free_port()  # aiosmtpd needs a port number, not 0
        self.controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        """The messages received, parsed with the modern email policy."""
        return [
            message_from_bytes(e.content, policy=default)  # type: ignore[misc]
            for e in self.envelopes
        ]


def hotline_on(
    core: Amparo, clock: Clock, resolver: Resolver = system_resolver, *, linked: bool = False
) -> HotlineService:
    """A :class:`HotlineService` over ``core``'s settings, store, checks and evidence, on
    ``clock`` and ``resolver``; ``linked`` adds its cases, proposals and feed signer (as
    ``amparo serve`` wires it)."""
    extra: dict[str, Any] = {}
    if linked:
        extra = {
            "cases": core.cases,
            "proposals": core.proposals,
            "signer": lambda: core.feeds.signer,
        }
    return HotlineService(
        core.settings,
        core.store,
        checks=core.checks,
        evidence=core.evidence,
        clock=clock,
        resolver=resolver,
        **extra,
    )


def unknown_item(
    core: Amparo, report_id: int, data: bytes, *, media_url: str, mime: str = "image/png"
) -> HotlineItem:
    """Add to a report an item whose picture matched nothing, preserved (encrypted) for an
    analyst as the verifier does it."""
    preserved = core.evidence.preserve(
        data,
        reason="hotline: unknown media",
        retention_days=core.settings.hotline_unknown_retention_days,
    )
    item, new = core.hotline.records.add_item(
        report_id,
        media_url=media_url,
        sha256=hashlib.sha256(data).hexdigest(),
        status="unknown",
        at=utc_now(),
        evidence_id=preserved.id,
        mime=mime,
        media_kind="photo",
        size=len(data),
    )
    assert new
    return item


def picture(seed: int, fmt: str = "PNG", quality: int = 90) -> bytes:
    """A benign synthetic picture: coloured shapes on a gradient."""
    from PIL import ImageDraw

    image = Image.new("RGB", (320, 240))
    pixels = image.load()
    assert pixels is not None
    for x in range(320):
        for y in range(240):
            pixels[x, y] = ((x * 255) // 320, (y * 255) // 240, (seed * 53) % 256)
    draw = ImageDraw.Draw(image)
    for i in range(6):
        k = seed * 7 + i * 31
        box = (k * 13 % 250, k * 29 % 170, k * 13 % 250 + 60, k * 29 % 170 + 60)
        draw.ellipse(box, fill=((k * 41) % 256, (k * 67) % 256, (k * 97) % 256))
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return out.getvalue()


def submit_report(service: Any, url: str, clock: Any) -> int:
    """A URL report made straight in the repository (channel ``cli``), as tests need one."""
    host = url.split("/")[2].split(":")[0]
    made, _joined = service.records.submit(url, url, host, at=clock(), channel="cli")
    return int(made.id)


def crawl_audits(amparo: Any, report_id: int) -> list[dict[str, Any]]:
    """The ``hotline.crawl`` audit entries of a report, oldest first."""
    return [
        e.details
        for e in reversed(amparo.audit.entries())
        if e.action == "hotline.crawl" and e.target == f"url-report:{report_id}"
    ]


def noticed_report(
    records: Any, *, url: str, host: str, media_url: str, content: bytes, now: Any
) -> tuple[Any, Any]:
    """A report of ``url`` whose known item (``content`` at ``media_url``) was noticed at
    ``now``; its first re-check due 6 hours later. Made straight in the repository."""
    import hashlib
    from datetime import timedelta

    from amparo.hashing import hash_media

    report, _ = records.submit(url, url, host, at=now, channel="cli")
    item, _ = records.add_item(
        report.id,
        media_url=media_url,
        sha256=hashlib.sha256(content).hexdigest(),
        status="verified",
        at=now,
        pdq=hash_media(content).pdq,
        assessment="baseline",
    )
    report = records.update(
        report.id,
        at=now,
        status="notified",
        first_notice_at=now,
        last_notice_at=now,
        notices_sent=1,
        next_recheck_at=now + timedelta(hours=6),
    )
    return report, item
