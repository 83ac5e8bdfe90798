"""URL fetching refuses the private network (after DNS, on every redirect) and keeps to its
size and time limits. Offline: a local server on 127.0.0.1, reached through the allowlist."""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from amparo.errors import FetchBusyError, FetchError, MediaTooLargeError, UrlRefusedError
from amparo.fetch import (
    Fetcher,
    FetchLimits,
    FetchSlots,
)
from amparo.redaction import redact_url
from amparo.url_policy import is_public, parse_allowlist
from slow_server import Trickler

BODY = b"\xff\xd8\xff" + b"x" * 5000


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path
        if path == "/img" or path.startswith("/img?"):
            self._send(200, BODY, host=self.headers.get("Host", ""))
        elif path.startswith("/redirect-to/"):
            self.send_response(302)
            self.send_header("Location", path.removeprefix("/redirect-to/").replace("|", "/"))
            self.end_headers()
        elif path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif path == "/big":
            self._send(200, b"x" * 200_000)
        elif path == "/big-chunked":
            self.send_response(200)
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"x" * 10_000)
        elif path == "/slow":
            time.sleep(2)
            self._send(200, BODY)
        else:
            self._send(404, b"no")

    def _send(self, status: int, body: bytes, host: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Seen-Host", host)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def fetcher(allow: str = "", **limits: float) -> Fetcher:
    hosts, nets = parse_allowlist(allow)
    resolver = {
        "public.test": ["93.184.216.34"],
        "rebind.test": ["10.0.0.7"],
        "sixtofour.test": ["2002:a9fe:a9fe::1"],  # 6to4 of 169.254.169.254
        "nat64.test": ["64:ff9b::a00:7"],  # NAT64 of 10.0.0.7
    }
    return Fetcher(
        FetchLimits(allow_hosts=hosts, allow_networks=nets, **limits),  # type: ignore[arg-type]
        resolver=lambda host, _port: resolver.get(host, ["127.0.0.1"]),
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost/x",
        "http://[::1]/x",
        "http://10.1.2.3/x",
        "http://192.168.0.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://224.0.0.1/x",
        "http://0.0.0.0/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://rebind.test/x",
        "http://[2002:7f00:1::1]/x",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "http://sixtofour.test/x",
        "http://nat64.test/x",
        "file:///etc/passwd",
        "ftp://public.test/x",
        "gopher://public.test/x",
        "http://user:pw@public.test/x",
        "/relative",
    ],
)
def test_refuses_non_public_targets(url: str) -> None:
    with pytest.raises(UrlRefusedError):
        fetcher().fetch(url)


def test_public_address_passes_the_check() -> None:
    assert fetcher().check_url("https://public.test/a.jpg")[3] == "93.184.216.34"


def test_allowlist_fetches_and_keeps_host_header(server: str) -> None:
    got = fetcher("127.0.0.1").fetch(server + "/img")
    assert got.content == BODY
    port = server.rsplit(":", 1)[1]
    # By name: resolved here, connected by address, Host header kept.
    got = fetcher("files.internal").fetch(f"http://files.internal:{port}/img")
    assert got.content == BODY


def test_every_redirect_is_checked(server: str) -> None:
    ok = fetcher("127.0.0.1").fetch(server + "/redirect-to/|img")
    assert ok.content == BODY and ok.url.endswith("/img")
    with pytest.raises(UrlRefusedError):
        fetcher("127.0.0.1").fetch(server + "/redirect-to/http:||169.254.169.254|x")
    with pytest.raises(UrlRefusedError):
        fetcher("127.0.0.1").fetch(server + "/redirect-to/http:||rebind.test|x")
    with pytest.raises(UrlRefusedError):
        fetcher("127.0.0.1").fetch(server + "/redirect-to/file:|||etc|passwd")
    with pytest.raises(FetchError, match="redirects"):
        fetcher("127.0.0.1", max_redirects=3).fetch(server + "/loop")


def test_size_and_time_limits(server: str) -> None:
    with pytest.raises(MediaTooLargeError):
        fetcher("127.0.0.1", max_bytes=100_000).fetch(server + "/big")
    with pytest.raises(MediaTooLargeError):
        fetcher("127.0.0.1", max_bytes=100_000).fetch(server + "/big-chunked")
    start = time.monotonic()
    with pytest.raises(FetchError, match="longer"):
        fetcher("127.0.0.1", timeout_seconds=0.5).fetch(server + "/slow")
    assert time.monotonic() - start < 1.8
    with pytest.raises(FetchError, match="404"):
        fetcher("127.0.0.1").fetch(server + "/missing")


def test_allowlist_parsing() -> None:
    hosts, nets = parse_allowlist(" 10.0.0.0/8, files.internal., ::1 ,")
    assert hosts == {"files.internal"} and [str(n) for n in nets] == ["10.0.0.0/8", "::1/128"]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::", False),  # 6to4 of 169.254.169.254
        ("2002:a00:1::", False),  # 6to4 of 10.0.0.1
        ("2002:c0a8:101::1", False),  # 6to4 of 192.168.1.1
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b::c0a8:101", False),  # NAT64 of 192.168.1.1
        ("64:ff9b:1::a00:1", False),  # local-use NAT64 of 10.0.0.1
        ("::ffff:10.0.0.1", False),
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
    ],
)
def test_ipv6_addresses_embedding_a_private_ipv4_are_private(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_trickled_headers_end_at_the_total_deadline() -> None:
    """A server sending its headers a byte at a time never trips a per-read timeout; the
    fetch still ends at its total deadline."""
    with Trickler(interval=0.2, max_seconds=10) as slow:
        start = time.monotonic()
        with pytest.raises(FetchError, match="longer than 1 s"):
            fetcher("127.0.0.1", timeout_seconds=1.0).fetch(slow.url + "/img.jpg")
        elapsed = time.monotonic() - start
    assert elapsed < 2.5


def test_http_client_logs_never_carry_url_tokens(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fetcher("127.0.0.1").fetch(server + "/img?token=s3cr3t&sig=abc")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request" in text  # httpx logged the request ...
    assert "/img?[redacted]" in text  # ... without its query string
    assert "s3cr3t" not in text and "sig=abc" not in text


def test_redact_url() -> None:
    line = 'GET https://u:pw@h.test/a/b?x=1&t=2#frag "200" then http://k.test/p done'
    assert redact_url(line) == 'GET https://h.test/a/b?[redacted] "200" then http://k.test/p done'


def test_fetch_slots_cap_each_key_and_the_process() -> None:
    slots = FetchSlots(per_key=2, total=3)
    with slots.hold("a"), slots.hold("a"):
        with pytest.raises(FetchBusyError, match="this key") as refused, slots.hold("a"):
            pass
        assert refused.value.http_status == 429 and refused.value.hint
        with slots.hold("b"), pytest.raises(FetchBusyError, match="server"), slots.hold("c"):
            pass
    with slots.hold("a"), slots.hold("a"), slots.hold("c"):
        pass  # all released
