"""The scan journal: JSON lines appended as items complete, so a killed scan can resume.

Line 1 is a header ``{"kind": "header", "version": 1, "banks": [...], "started": ...}``; every
other line is ``{"kind": "item", ...ItemRecord.to_json()}``. A line cut short by a kill is
ignored on reading. No hash of non-matching content is ever written here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from amparo.errors import FormatError, InputError
from amparo.files import private_dir
from amparo.scan.model import ItemRecord

log = logging.getLogger("amparo.scan")

JOURNAL_VERSION = 1


class ScanJournal:
    """Appends completed items to a journal file and remembers what an earlier run did."""

    def __init__(self, path: Path, *, banks: Sequence[str] | None, resume: bool) -> None:
        self.path = path
        self.banks = sorted(banks) if banks else None
        self.previous: dict[str, ItemRecord] = {}
        fresh = not (resume and path.exists())
        if not fresh:
            self.previous = self._load()
        elif resume:
            log.warning("no journal at %s: starting from the beginning", path)
        private_dir(path.parent)
        # The journal lists paths that were scanned: readable by its owner only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if fresh else 0), 0o600)
        self._fh: TextIO = os.fdopen(fd, "a", encoding="utf-8")
        if fresh:
            self._write(
                {
                    "kind": "header",
                    "version": JOURNAL_VERSION,
                    "banks": self.banks,
                    "started": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
        elif self._ends_mid_line():
            self._fh.write("\n")  # finish a line cut short by a kill, so the next one parses
        self._fh.flush()

    def lookup(
        self, path: str, size: int, mtime_ns: int, etag: str | None = None
    ) -> ItemRecord | None:
        """The earlier run's record for this item, if it is still valid: same size and mtime
        (and, for an object in a bucket, the same ETag), and not an error (errors are retried:
        the cause may be gone)."""
        record = self.previous.get(path)
        if record is None or record.size != size or record.mtime_ns != mtime_ns:
            return None
        if record.etag != etag:
            return None
        return None if record.status == "error" else record

    def append(self, records: Sequence[ItemRecord]) -> None:
        """Record completed items and flush them to the operating system."""
        for record in records:
            self._write({"kind": "item", **record.to_json()}, flush=False)
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def _write(self, obj: dict[str, object], *, flush: bool = True) -> None:
        self._fh.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
        if flush:
            self._fh.flush()

    def _ends_mid_line(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return False
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"

    def _load(self) -> dict[str, ItemRecord]:
        records: dict[str, ItemRecord] = {}
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("%s line %d is incomplete; ignored", self.path, number)
                    continue
                if not isinstance(obj, dict):
                    continue
                if obj.get("kind") == "header":
                    self._check_header(obj)
                elif obj.get("kind") == "item":
                    try:
                        record = ItemRecord.from_json(obj)
                    except (FormatError, KeyError, ValueError, TypeError, OverflowError):
                        log.warning("%s line %d is not a valid record; ignored", self.path, number)
                        continue
                    records[record.path] = record
        return records

    def _check_header(self, header: dict[str, object]) -> None:
        if header.get("version") != JOURNAL_VERSION:
            raise InputError(
                f"{self.path} is a scan journal of version {header.get('version')!r}, "
                f"this Amparo writes version {JOURNAL_VERSION}",
                hint="run the scan again without --resume",
            )
        if header.get("banks") != self.banks:
            raise InputError(
                f"{self.path} was written by a scan of other banks: "
                f"{_describe_banks(header.get('banks'))}, not {_describe_banks(self.banks)}",
                hint="resume with the same --bank options, or run without --resume",
            )


def _describe_banks(banks: object) -> str:
    """How a journal header's bank list reads in a message (None: no --bank given)."""
    if banks is None:
        return "every enabled bank (no --bank)"
    if isinstance(banks, list) and banks:
        return "--bank " + ", --bank ".join(str(b) for b in banks)
    return repr(banks)
