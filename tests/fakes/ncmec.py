"""A fake NCMEC hash sharing API (v2, XML) on 127.0.0.1, served from a thread.

It speaks what python-threatexchange's ``hash_api`` client expects (and its test data
shows): ``GET /v2/status``, ``GET /v2/entries?from&to`` paged with ``<paging><next>`` URLs
carrying ``start``/``size``/``max``, tombstones as ``deletedImage``/``deletedVideo``,
``GET /v2/feedback/{FP}/reasons`` and ``PUT /v2/entries/{member}/{entry}/{FP}/feedback``;
everything under a path prefix like the real environments (``/hashsharing``), with HTTP
basic auth. Entries are served in the order they were stored, not by time, as NCMEC does.

Usage::

    with FakeNCMEC() as fake:
        fake.add(42, "image1", ts, md5="...")
        fake.fail_next(429, 503)          # the next two requests fail
        fake.break_page(start=3)          # the page starting at entry 3 is not XML
        ... base_url=fake.url ...
        fake.requests, fake.feedback      # what was asked
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlsplit

from fakes.base import LoopbackServer, QuietHandler, send_bytes

NAMESPACE = "https://hashsharing.ncmec.org/hashsharing/v2"
DATE = "%Y-%m-%dT%H:%M:%SZ"
DEFAULT_REASON = ("01234567-abcd-0123-4567-012345678900", "Not CSAM")


def ncmec_time(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime(DATE)


def parse_time(value: str) -> int:
    text = value.strip().replace(".000Z", "Z")
    return int(datetime.strptime(text, DATE).replace(tzinfo=UTC).timestamp())


@dataclass
class FakeEntry:
    member_id: int
    entry_id: str
    timestamp: int
    kind: str = "image"
    fingerprints: dict[str, str] = field(default_factory=dict)
    classification: str | None = "A1"
    deleted: bool = False
    member_name: str = "Example Member"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    user: str | None


class FakeNCMEC(LoopbackServer):
    """An NCMEC-like hash sharing server; see the module docstring."""

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        page_size: int = 1000,
        prefix: str = "/hashsharing",
        member: tuple[int, str] = (1, "Amparo Test"),
    ) -> None:
        self.users = users if users is not None else {"user": "secret"}
        self.page_size = page_size
        self.prefix = prefix.rstrip("/")
        self.member = member
        self.entries: list[FakeEntry] = []
        self.reasons: dict[str, dict[str, str]] = {}
        """Negative feedback reasons per fingerprint type (GUID -> name); default one each."""
        self.requests: list[Recorded] = []
        self.feedback: list[tuple[str, str, str, str]] = []
        """(member id, entry id, fingerprint type, body) of each feedback PUT."""
        self._failures: list[int] = []
        self._broken: set[int] = set()
        super().__init__()
        self.url = self.origin + self.prefix

    # -- what tests set ---------------------------------------------------------------------

    def add(
        self,
        member_id: int,
        entry_id: str,
        timestamp: int,
        *,
        kind: str = "image",
        classification: str | None = "A1",
        **fingerprints: str,
    ) -> FakeEntry:
        """Store an entry (replacing one with the same member and id, in place: the
        server's order stays not-by-time)."""
        entry = FakeEntry(member_id, entry_id, timestamp, kind, dict(fingerprints), classification)
        with self.lock:
            for index, old in enumerate(self.entries):
                if (old.member_id, old.entry_id) == (member_id, entry_id):
                    self.entries[index] = entry
                    return entry
            self.entries.append(entry)
        return entry

    def delete(self, member_id: int, entry_id: str, timestamp: int) -> None:
        """Turn an entry into a tombstone updated at ``timestamp``."""
        with self.lock:
            for entry in self.entries:
                if (entry.member_id, entry.entry_id) == (member_id, entry_id):
                    entry.deleted, entry.timestamp, entry.fingerprints = True, timestamp, {}
                    return
        raise KeyError((member_id, entry_id))

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, one each, before serving again."""
        with self.lock:
            self._failures.extend(statuses)

    def break_page(self, *, start: int) -> None:
        """Serve the entries page that begins at (1-based) entry ``start`` as broken XML."""
        with self.lock:
            self._broken.add(start)

    def mend_pages(self) -> None:
        with self.lock:
            self._broken.clear()

    def entry_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/v2/entries")]

    # -- serving ----------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self._serve("GET")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                user = fake._user(self.headers.get("Authorization"))
                with fake.lock:
                    fake.requests.append(
                        Recorded(method, parts.path, parse_qs(parts.query), body, user)
                    )
                    failure = fake._failures.pop(0) if fake._failures else None
                if failure is not None:
                    headers = {"Retry-After": "0"} if failure == 429 else {}
                    self._send(failure, b"<error>try again</error>", headers)
                    return
                if user is None:
                    self._send(401, b"<error>Unauthorized</error>", {"WWW-Authenticate": "Basic"})
                    return
                if not parts.path.startswith(fake.prefix + "/v2/"):
                    self._send(404, b"<error>not found</error>")
                    return
                status, payload = fake._route(
                    method, parts.path[len(fake.prefix) :], parse_qs(parts.query), body
                )
                self._send(status, payload)

            def _send(
                self, status: int, payload: bytes, headers: dict[str, str] | None = None
            ) -> None:
                send_bytes(self, status, payload, headers, content_type="application/xml")

        return Handler

    def _user(self, header: str | None) -> str | None:
        if not header or not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if self.users.get(user) == password else None

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, bytes]:
        segments = path.strip("/").split("/")  # v2, endpoint, ...
        if method == "GET" and segments == ["v2", "status"]:
            root = ET.Element("status", {"xmlns": NAMESPACE})
            ET.SubElement(root, "username").text = next(iter(self.users), "")
            ET.SubElement(root, "member", {"id": str(self.member[0])}).text = self.member[1]
            return 200, _xml(root)
        if method == "GET" and segments == ["v2", "entries"]:
            return self._entries(query)
        if method == "GET" and len(segments) == 4 and segments[1] == "feedback":
            fingerprint = segments[2]
            reasons = self.reasons.get(fingerprint, dict([DEFAULT_REASON]))
            root = ET.Element("availableFeedbackReasons", {"xmlns": NAMESPACE})
            for guid, name in reasons.items():
                ET.SubElement(root, "reason", {"guid": guid, "name": name, "type": fingerprint})
            return 200, _xml(root)
        if method == "PUT" and len(segments) == 6 and segments[1] == "entries":
            _v2, _entries, member_id, entry_id, fingerprint, tail = segments
            if tail != "feedback":
                return 404, b"<error>not found</error>"
            try:
                ET.fromstring(body)
            except ET.ParseError:
                return 400, b"<error>bad feedback XML</error>"
            with self.lock:
                self.feedback.append((member_id, entry_id, fingerprint, body.decode()))
            root = ET.Element("submissionResult", {"xmlns": NAMESPACE})
            return 200, _xml(root)
        return 404, b"<error>not found</error>"

    def _entries(self, query: dict[str, list[str]]) -> tuple[int, bytes]:
        try:
            start_ts, end_ts = parse_time(query["from"][0]), parse_time(query["to"][0])
        except (KeyError, ValueError):
            return 400, b"<error>from and to are required</error>"
        with self.lock:
            matching = [e for e in self.entries if start_ts <= e.timestamp < end_ts]
            broken = set(self._broken)
        start = int(query.get("start", ["1"])[0])
        size = int(query.get("size", [str(self.page_size)])[0])
        top = len(matching)
        if start in broken:
            return 200, b'<?xml version="1.0"?><queryResult><images><image><id>oops'
        page = matching[start - 1 : start - 1 + size]
        root = ET.Element("queryResult", {"xmlns": NAMESPACE})
        for kind, group in (("image", "images"), ("video", "videos")):
            items = [e for e in page if e.kind == kind]
            if not items:
                continue
            top_ts = max(e.timestamp for e in items)
            element = ET.SubElement(
                root, group, {"count": str(len(items)), "maxTimestamp": ncmec_time(top_ts)}
            )
            for entry in items:
                tag = ("deleted" + kind.capitalize()) if entry.deleted else kind
                item = ET.SubElement(element, tag)
                ET.SubElement(item, "member", {"id": str(entry.member_id)}).text = entry.member_name
                ET.SubElement(item, "timestamp").text = ncmec_time(entry.timestamp)
                ET.SubElement(item, "id").text = entry.entry_id
                if entry.deleted:
                    continue
                if entry.classification:
                    ET.SubElement(item, "classification").text = entry.classification
                prints = ET.SubElement(item, "fingerprints")
                for name, value in entry.fingerprints.items():
                    ET.SubElement(prints, name).text = value
        if start + size <= top:
            paging = ET.SubElement(root, "paging")
            following = {
                "from": query["from"][0],
                "to": query["to"][0],
                "start": str(start + size),
                "size": str(size),
                "max": str(top),
            }
            ET.SubElement(paging, "next").text = "/v2/entries?" + urlencode(following)
        return 200, _xml(root)


def _xml(root: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + ET.tostring(root)
