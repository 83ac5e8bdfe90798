"""The ``file`` and ``url`` exchanges: a hash list at a path or a URL, re-read in full.

A list is whatever Amparo's bank import reads (``text``, ``csv``, ``te``, ``vics``; see
:mod:`amparo.banks.formats`), parsed by the same parsers, so a list that imports by hand
imports the same way here. A list has no change log, so every fetch that finds new content is
a *full* fetch: its batches are marked ``full`` and the last one ``complete``, and the runner
withdraws what the list no longer names. Unchanged content (same digest; for a URL also a
``304 Not Modified``) is one ``unchanged`` batch and nothing else, so polling a big list that
did not change costs a ``stat`` or a conditional GET.

Only the last batch carries the checkpoint of the new content: the batches before it carry
the checkpoint the fetch started from, so a fetch that dies half way reads the whole list
again next time instead of taking the half it stored for all of it.

A line that cannot be read becomes a :class:`~amparo.exchanges.model.Malformed` item naming
its line (or VICS record) number while the valid lines land. A list that yields no valid
entry at all is refused (:class:`ExchangeError`) rather than taken as "withdraw everything":
a truncated download or a wrong ``format`` must not empty a bank. A list that really is empty
on purpose needs ``allow_empty: true``.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from stat import S_ISREG
from typing import Any, TextIO
from urllib.parse import urlsplit

from amparo.banks.formats import FORMATS, ImportResult, detect_format, iter_entries
from amparo.banks.formats.vics import CATEGORY_MAPS
from amparo.banks.model import EntryRecord
from amparo.config import Settings
from amparo.errors import ExchangeError, FormatError, InputError, UrlRefusedError
from amparo.exchanges.base import Exchange, ExchangeContext, register
from amparo.exchanges.model import Batch, Checkpoint, Credentials, Malformed, Provenance, Update
from amparo.signals import get_signal_type
from amparo.url_policy import UrlPolicy, parse_allowlist

MAX_ID_SIGNAL = 200
"""Signals longer than this (a video's vPDQ) are named by their SHA-256 in record ids."""

_URL_EXTENSIONS = {".json": "vics", ".csv": "csv", ".te": "te"}
_SNIFF_BYTES = 65536
_HASH_CHUNK = 1 << 20


@dataclass
class FileCheckpoint(Checkpoint):
    """The content a ``file`` fetch last read in full: ``stat`` first (cheap), digest second
    (a file touched but not changed is still unchanged)."""

    size: int | None = None
    mtime_ns: int | None = None
    sha256: str | None = None


@dataclass
class UrlCheckpoint(Checkpoint):
    """The content a ``url`` fetch last read in full: the validators for a conditional GET,
    and the body's digest for servers that send none (or send new ones for the same body)."""

    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None


def record_id(entry: EntryRecord) -> str:
    """The record id of a list entry.

    ``<signal_type>:<signal>``, prefixed with the entry's source id when the format carries
    one (csv ``source_id``, VICS ``MediaID``): ``<source_id>:<signal_type>:<signal>``. The
    signal stays in the id even with a source id because one VICS Media record yields one
    entry per hash under the same id (and a csv may repeat a case number): an id of the
    source id alone would let one hash replace another. Long signals are named by digest.
    """
    signal = entry.signal
    if len(signal) > MAX_ID_SIGNAL:
        signal = "sha256-" + hashlib.sha256(signal.encode()).hexdigest()
    base = f"{entry.signal_type}:{signal}"
    return f"{entry.source_id}:{base}" if entry.source_id else base


def to_update(entry: EntryRecord) -> Update:
    provenance = Provenance.from_json(entry.provenance) if entry.provenance else None
    return Update(
        record_id=record_id(entry),
        signal_type=entry.signal_type,
        signal=entry.signal,
        category=entry.category,
        tags=tuple(entry.tags),
        source_ids=(entry.source_id,) if entry.source_id else (),
        provenance=provenance,
    )


class _ListExchange(Exchange):
    """What ``file`` and ``url`` share: the list settings and the reading into batches."""

    where_key: str = ""

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        known = {cls.where_key, "format", "signal_type", "category_map", "allow_empty"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise InputError(
                f"the {cls.kind} exchange does not know the setting(s) {', '.join(unknown)}",
                hint=f"settings: {', '.join(sorted(known))}",
            )
        where = settings.get(cls.where_key)
        if not isinstance(where, str) or not where.strip():
            raise InputError(
                f"the {cls.kind} exchange needs a {cls.where_key!r} setting",
                hint=f'e.g. {{"{cls.where_key}": '
                + ('"/srv/lists/ncmec-md5.txt"}' if cls.kind == "file" else '"https://..."}'),
            )
        settings[cls.where_key] = where.strip()
        fmt = settings.get("format")
        if fmt is not None:
            if not isinstance(fmt, str) or fmt.strip().lower() not in FORMATS:
                raise InputError(
                    f"unknown hash-list format {fmt!r}", hint="formats: " + ", ".join(FORMATS)
                )
            settings["format"] = fmt.strip().lower()
        signal_type = settings.get("signal_type")
        if signal_type is not None:
            if not isinstance(signal_type, str):
                raise InputError("signal_type must be a signal type name such as 'pdq'")
            settings["signal_type"] = get_signal_type(signal_type).name
        category_map = settings.get("category_map")
        if category_map is not None and category_map not in CATEGORY_MAPS:
            raise InputError(
                f"unknown category map {category_map!r}",
                hint="built-in maps: " + ", ".join(CATEGORY_MAPS),
            )
        if not isinstance(settings.get("allow_empty", False), bool):
            raise InputError("allow_empty must be true or false")
        return settings

    def _now(self) -> str:
        return self.context.clock().isoformat()

    def _batches(
        self,
        stream: TextIO,
        fmt: str,
        *,
        new: Checkpoint,
        previous: Checkpoint | None,
        source_name: str,
    ) -> Iterator[Batch]:
        """Read ``stream`` in ``fmt`` into full-fetch batches; the last carries ``new``."""
        report = ImportResult()
        size = max(1, self.context.settings.exchange_batch_size)
        updates: list[Update] = []
        malformed: list[Malformed] = []
        read = 0
        drained = 0

        def drain() -> None:
            nonlocal drained
            for number, message in report.problems:
                malformed.append(
                    Malformed(
                        reason=f"{source_name}: {number}: {message}",
                        raw=Malformed.cut(message),
                        record_id=f"line:{number}",
                    )
                )
            drained += len(report.problems)
            report.problems.clear()
            lost = report.problem_count - drained
            if lost > 0:  # more problems in a row than the parser keeps details of
                malformed.append(
                    Malformed(reason=f"{source_name}: {lost} more entries could not be read")
                )
                drained += lost

        try:
            entries = iter_entries(
                stream,
                fmt,
                signal_type=self.settings.get("signal_type"),
                category_map=self.settings.get("category_map"),
                skip_ignored=True,
                source_name=source_name,
                report=report,
            )
            for entry in entries:
                read += 1
                if report.problem_count != drained:
                    drain()
                if entry.enabled:  # a disabled row is not listed: withdrawn like a removed one
                    updates.append(to_update(entry))
                if len(updates) + len(malformed) >= size:
                    yield Batch(updates, malformed, checkpoint=previous, full=True)
                    updates, malformed = [], []
            drain()
        except FormatError as exc:
            raise ExchangeError(
                f"cannot read {source_name} as {fmt}: {exc.message}",
                hint=(exc.hint or "")
                + "; set the collaboration's format (and signal_type) if detection is wrong; "
                "nothing was withdrawn",
            ) from None
        if read == 0 and not self.settings.get("allow_empty", False):
            if malformed:
                yield Batch([], malformed, checkpoint=previous, full=True)
            raise ExchangeError(
                f"{source_name} holds no valid entry ({report.problem_count} unreadable); "
                "refusing to withdraw every entry of the collaboration",
                hint="check the list and the collaboration's format/signal_type settings; set "
                "allow_empty: true if the list is meant to be empty",
            )
        yield Batch(updates, malformed, checkpoint=new, full=True, complete=True)


@register
class FileExchange(_ListExchange):
    """A hash list in a file on this machine (re-read when its content changes)."""

    kind = "file"
    description = "A hash list file (text, csv, te or vics) on this machine"
    checkpoint_type = FileCheckpoint
    where_key = "path"

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[Batch]:
        try:
            path = list_path(str(self.settings["path"]), self.context.settings)
        except InputError as exc:
            raise ExchangeError(exc.message, hint=exc.hint) from None
        previous = checkpoint if isinstance(checkpoint, FileCheckpoint) else None
        try:
            # stat before reading: a write during the read changes mtime, so the next fetch
            # reads again even though this one recorded the digest of a mix.
            stat = path.stat()
            if not S_ISREG(stat.st_mode):
                raise ExchangeError(
                    f"{str(path)!r} is not a regular file",
                    hint="point the collaboration at a hash-list file",
                )
            limit = self.context.settings.exchange_max_list_bytes
            if stat.st_size > limit:
                raise ExchangeError(
                    f"the list file {path.name} is {stat.st_size:,} bytes, more than the "
                    f"{limit:,} allowed",
                    hint="raise exchange_max_list_bytes if the list is really that large",
                )
            if (
                previous is not None
                and previous.size == stat.st_size
                and previous.mtime_ns == stat.st_mtime_ns
            ):
                yield Batch(unchanged=True, checkpoint=previous)
                return
            digest = _file_sha256(path)
            new = FileCheckpoint(
                fetched_at=self._now(),
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
                sha256=digest,
            )
            if previous is not None and previous.sha256 == digest:
                yield Batch(unchanged=True, checkpoint=new)
                return
            fmt = self.settings.get("format") or detect_format(path)
            with path.open(encoding="utf-8", errors="replace", newline="") as stream:
                yield from self._batches(
                    stream, fmt, new=new, previous=checkpoint, source_name=path.name
                )
        except (OSError, ValueError) as exc:
            raise ExchangeError(
                f"cannot read the list file {str(path)!r}: {getattr(exc, 'strerror', None) or exc}",
                hint="check the collaboration's path and that Amparo's user may read it",
            ) from None


def list_dirs(settings: Settings) -> list[Path]:
    """The directories `file` lists may be read from, resolved."""
    raw = [d.strip() for d in settings.exchange_list_dirs.split(",") if d.strip()]
    dirs = [Path(d).expanduser() for d in raw] or [settings.home / "lists"]
    return [d.resolve() for d in dirs]


def list_path(path: str, settings: Settings) -> Path:
    """A `file` collaboration's list, confined to ``exchange_list_dirs``: a curator chooses
    the path over the API, and must not have the server read its own keys or configuration
    back (malformed lines are kept, with their text, in the quarantine)."""
    if "\x00" in path:
        raise InputError("the list path contains a NUL character")
    given = Path(path).expanduser()
    if not given.is_absolute():
        raise InputError(
            "a list file must be named by its absolute path", hint="e.g. <home>/lists/mx.csv"
        )
    resolved = given.resolve()  # symbolic links and .. cannot lead out
    allowed = list_dirs(settings)
    if not any(resolved.is_relative_to(d) for d in allowed):
        raise InputError(
            f"list file {path!r} is outside the list directories "
            f"({', '.join(str(d) for d in allowed)})",
            hint="put the list there, or add its directory to the exchange_list_dirs setting",
        )
    return resolved


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@register
class UrlExchange(_ListExchange):
    """A hash list at an HTTPS URL, fetched with a conditional GET.

    The URL must be ``https``; plain ``http`` only for a host or network that the
    installation's ``url_allowlist`` names (an intranet mirror, a test server on loopback).
    The address rules of :mod:`amparo.url_policy` apply as to every URL Amparo reaches:
    private, loopback and link-local addresses are refused unless allow-listed. Redirects
    are not followed (give the final URL); the host is checked when the collaboration is
    created and again before each fetch.
    """

    kind = "url"
    description = "A hash list (text, csv, te or vics) at an HTTPS URL"
    checkpoint_type = UrlCheckpoint
    where_key = "url"

    def __init__(
        self, settings: dict[str, Any], credentials: Credentials | None, context: ExchangeContext
    ) -> None:
        super().__init__(settings, credentials, context)
        self._policy = UrlPolicy.from_settings(context.settings)
        scheme, host, _port = self._policy.parse(self.settings["url"])
        if scheme != "https" and not self._allowlisted(host):
            raise UrlRefusedError(
                f"the url exchange fetches https URLs only, not {scheme}://{host}",
                hint="use https, or have an admin add the host to url_allowlist",
            )

    def _allowlisted(self, host: str) -> bool:
        hosts, networks = parse_allowlist(self.context.settings.url_allowlist)
        if host in hosts:
            return True
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(address in net for net in networks)

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[Batch]:
        url = self.settings["url"]
        self._policy.check(url)  # resolves the host: refuses private addresses
        previous = checkpoint if isinstance(checkpoint, UrlCheckpoint) else None
        headers: dict[str, str] = {}
        if previous is not None and previous.etag:
            headers["If-None-Match"] = previous.etag
        if previous is not None and previous.last_modified:
            headers["If-Modified-Since"] = previous.last_modified
        response = self.context.http.get(
            url, headers=headers, ok=(200, 304), what=f"the list at {url}"
        )
        if response.status_code == 304 and previous is not None:
            unchanged = UrlCheckpoint(
                fetched_at=self._now(),
                etag=response.headers.get("etag") or previous.etag,
                last_modified=response.headers.get("last-modified") or previous.last_modified,
                sha256=previous.sha256,
            )
            yield Batch(unchanged=True, checkpoint=unchanged)
            return
        if response.status_code == 304:
            raise ExchangeError(
                f"the list at {url} answered 304 Not Modified to an unconditional GET",
                hint="the server is misbehaving; nothing was changed",
            )
        body = response.content
        new = UrlCheckpoint(
            fetched_at=self._now(),
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            sha256=hashlib.sha256(body).hexdigest(),
        )
        if previous is not None and previous.sha256 == new.sha256:
            yield Batch(unchanged=True, checkpoint=new)
            return
        fmt = self.settings.get("format") or url_format(url, body)
        del response
        stream = io.StringIO(body.decode("utf-8", errors="replace"), newline="")
        del body
        name = PurePosixPath(urlsplit(url).path).name or url
        yield from self._batches(stream, fmt, new=new, previous=checkpoint, source_name=name)


def url_format(url: str, body: bytes) -> str:
    """The format of a fetched list: by the URL path's extension, else by content."""
    suffix = os.path.splitext(urlsplit(url).path)[1].lower()
    return _URL_EXTENSIONS.get(suffix) or detect_format(body[:_SNIFF_BYTES])
