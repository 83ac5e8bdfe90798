"""Hash-list import and export formats: ``text``, ``csv``, ``te`` and ``vics``.

Reading never stops at a bad line: it is reported in ``ImportResult.problems`` with its
1-based line (or VICS record) number and skipped, unless ``strict=True``, where the first bad
line raises FormatError. Every hash is normalised by its signal type. See docs/formats.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TextIO, cast

from amparo.banks.formats.base import (
    IGNORE,
    MAX_PROBLEMS,
    TE_TYPE_NAMES,
    TE_UNSUPPORTED,
    Diagnostics,
    ImportResult,
    ReadOptions,
)
from amparo.banks.formats.csv_format import TAG_SEPARATOR, read_csv, write_csv
from amparo.banks.formats.te import read_te, write_te
from amparo.banks.formats.text import read_text, write_text
from amparo.banks.formats.vics import (
    CATEGORY_MAPS,
    PROJECT_VIC,
    read_vics,
    resolve_category_map,
    write_vics,
)
from amparo.banks.model import EntryRecord
from amparo.errors import FormatError, InputError
from amparo.signals import get_signal_type

FORMATS = ("text", "csv", "te", "vics")

__all__ = [
    "CATEGORY_MAPS",
    "FORMATS",
    "IGNORE",
    "MAX_PROBLEMS",
    "PROJECT_VIC",
    "TAG_SEPARATOR",
    "ImportResult",
    "detect_format",
    "iter_entries",
    "read_entries",
    "write_entries",
]

CategoryMapArg = Mapping[int | str, str] | str | None

_SNIFF_BYTES = 65536


def _check_format(fmt: str) -> str:
    name = fmt.strip().lower()
    if name not in FORMATS:
        raise InputError(f"unknown hash-list format {fmt!r}", hint="formats: " + ", ".join(FORMATS))
    return name


def iter_entries(
    stream: TextIO,
    fmt: str,
    *,
    signal_type: str | None = None,
    strict: bool = False,
    category_map: CategoryMapArg = None,
    skip_ignored: bool = False,
    source_name: str | None = None,
    report: ImportResult | None = None,
    require_entries: bool = False,
) -> Iterator[EntryRecord]:
    """Yield entries one at a time, so a huge file is never held in memory twice.

    Problems and warnings go into ``report`` (its ``entries`` are left alone) as they are met;
    the warnings that summarise a file arrive once the iterator is exhausted.

    ``signal_type`` names the type of hashes whose type the file does not state (text, and
    csv rows without a type); it is required for 64-hex text hashes (pdq or sha256).
    ``category_map`` (vics only) is a mapping from category number to name or the name of
    a built-in map (``project_vic``, the default, or ``raw``); ``skip_ignored`` drops
    records whose category maps to ``"ignore"``. ``require_entries``: once the file is read,
    raise FormatError when it held no valid entry (every line rejected, or none at all), so
    an import that would add nothing (or, replacing, empty the bank) fails and changes
    nothing instead of succeeding quietly.
    """
    name = _check_format(fmt)
    options = ReadOptions(
        signal_type=get_signal_type(signal_type) if signal_type else None,
        category_map=resolve_category_map(category_map),
        category_map_given=category_map is not None,
        skip_ignored=skip_ignored,
    )
    diag = Diagnostics(
        report if report is not None else ImportResult(), strict=strict, source_name=source_name
    )
    entries: Iterator[EntryRecord]
    if name == "vics":
        entries = read_vics(stream, options, diag)
    else:
        lines = _without_bom(stream)
        if name == "text":
            entries = read_text(lines, options, diag)
        elif name == "csv":
            entries = read_csv(lines, options, diag)
        else:
            entries = read_te(lines, options, diag)
    return _at_least_one(entries, diag) if require_entries else entries


def _at_least_one(entries: Iterator[EntryRecord], diag: Diagnostics) -> Iterator[EntryRecord]:
    """Pass ``entries`` through; raise FormatError at the end when there were none."""
    count = 0
    for entry in entries:
        count += 1
        yield entry
    if count:
        return
    result = diag.result
    where = f"{diag.source_name}: " if diag.source_name else ""
    if result.problem_count:
        first_no, first = result.problems[0]
        raise FormatError(
            f"{where}no valid entry: all {result.problem_count:,} entries were rejected "
            f"(first at {first_no}: {first})",
            hint="check the format (--format/--type) and the hashes; nothing was changed",
            problems=list(result.problems),
        )
    raise FormatError(
        f"{where}no entry in the list",
        hint="the file is empty or holds only comments/headers; nothing was changed",
    )


def _without_bom(stream: TextIO) -> Iterator[str]:
    first = True
    for line in stream:
        if first:
            first = False
            line = line.lstrip("\ufeff")
        yield line


def read_entries(
    stream: TextIO,
    fmt: str,
    *,
    signal_type: str | None = None,
    strict: bool = False,
    category_map: CategoryMapArg = None,
    skip_ignored: bool = False,
    source_name: str | None = None,
) -> ImportResult:
    """Read a whole hash list: its entries, and the lines that could not be read.

    Raises InputError for an unknown format or signal type, and FormatError for a file that
    cannot be read at all (no csv header, broken JSON) or, with ``strict``, a bad line.
    """
    result = ImportResult()
    result.entries = list(
        iter_entries(
            stream,
            fmt,
            signal_type=signal_type,
            strict=strict,
            category_map=category_map,
            skip_ignored=skip_ignored,
            source_name=source_name,
            report=result,
        )
    )
    return result


def write_entries(
    stream: TextIO,
    fmt: str,
    entries: Iterable[EntryRecord],
    *,
    category_map: CategoryMapArg = None,
) -> int:
    """Write entries in ``fmt``; return how many were written.

    text writes hashes only and refuses entries of mixed signal types (InputError); text
    and te skip signal types whose text form spans lines; vics carries md5, sha1, sha256
    and pdq. Open files for csv with ``newline=""``.
    """
    name = _check_format(fmt)
    if name == "text":
        return write_text(stream, entries)
    if name == "csv":
        return write_csv(stream, entries)
    if name == "te":
        return write_te(stream, entries)
    return write_vics(stream, entries, resolve_category_map(category_map))


_EXTENSIONS = {".json": "vics", ".csv": "csv", ".te": "te"}


def detect_format(source: str | os.PathLike[str] | bytes) -> str:
    """Guess a file's format: by extension (``.json`` vics, ``.csv`` csv, ``.te`` te),
    otherwise by content. ``bytes`` are taken as the file's first bytes; a ``str`` or path
    names a file, whose first 64 KiB are read when the extension does not decide.

    By content: a JSON object or array is vics; a first line with a comma is a csv header;
    lines like ``pdq <hash>`` are te; anything else is text.
    """
    if isinstance(source, bytes):
        return _sniff(source)
    path = Path(source)
    by_extension = _EXTENSIONS.get(path.suffix.lower())
    if by_extension is not None:
        return by_extension
    with path.open("rb") as handle:
        return _sniff(handle.read(_SNIFF_BYTES))


def _sniff(head: bytes) -> str:
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith(("{", "[")):
        return "vics"
    te_names = {*TE_TYPE_NAMES, *TE_UNSUPPORTED, "md5", "sha1", "sha256"}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tokens = line.lower().split()
        if len(tokens) >= 2 and (
            tokens[0] in te_names or (len(tokens) >= 3 and tokens[1] in te_names)
        ):
            return "te"  # before the comma test: a te vpdq line is a JSON list with commas
        if "," in line:
            return "csv"
        return "text"
    return "text"


class _Replayed:
    """A stream whose first characters were read already (to sniff its format): those
    again, then the rest, read as the caller asks (so a list piped in is never held whole).
    What the readers use of a text stream: ``read``, ``readline``, iteration by line."""

    def __init__(self, head: str, rest: TextIO) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> str:
        if size < 0:
            out, self._head = self._head + self._rest.read(), ""
            return out
        if self._head:
            out, self._head = self._head[:size], self._head[size:]
            return out
        return self._rest.read(size)

    def readline(self) -> str:
        if not self._head:
            return self._rest.readline()
        end = self._head.find("\n")
        if end >= 0:
            line, self._head = self._head[: end + 1], self._head[end + 1 :]
            return line
        line, self._head = self._head + self._rest.readline(), ""
        return line

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self) -> None:
        """The underlying stream (stdin) stays open."""


def sniff_stream(stream: TextIO) -> tuple[str, TextIO]:
    """The format of a stream that cannot be re-read (stdin), from its first 64 KiB, and a
    stream that reads it from its start."""
    head = stream.read(_SNIFF_BYTES)
    return _sniff(head.encode()), cast(TextIO, _Replayed(head, stream))
