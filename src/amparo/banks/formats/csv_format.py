"""The ``csv`` format: a header row, then one entry per row with all of its metadata.

Columns (header names are case-insensitive; order is free):

    signal_type  aliases ``type``; Amparo or python-threatexchange names (``video_md5``)
    signal       aliases ``hash``, ``value``, ``signal_str``; the only required column
    category, tags, source_id, note, enabled

``tags`` are separated by ``|`` (not ``;`` or ``,``, which spreadsheets use as delimiters).
``enabled`` is ``true``/``false`` (also ``1``/``0``, ``yes``/``no``); empty means true.
Empty cells mean "not set". Unknown columns are ignored with one warning naming them.
Without a ``signal_type`` column, or where its cell is empty, the type comes from the
``signal_type`` option or, failing that, from the hash length as in the text format.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

from amparo.banks.formats.base import (
    Diagnostics,
    ReadOptions,
    line_normalizer,
    line_value,
    resolve_type_name,
)
from amparo.banks.formats.text import AMBIGUOUS_64_HEX, normalizers_by_length
from amparo.banks.model import EntryRecord
from amparo.errors import InvalidSignalError, UnknownSignalTypeError

TAG_SEPARATOR = "|"
COLUMNS = ("signal_type", "signal", "category", "tags", "source_id", "note", "enabled")
_ALIASES = {
    "type": "signal_type",
    "hash": "signal",
    "value": "signal",
    "signal_str": "signal",
}
# A video's compact vPDQ (vpdq1:...) can run to megabytes, past csv's default 128 KiB cell.
MAX_CELL_CHARS = 64 * 1024 * 1024
_TRUE = frozenset({"", "true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})

_Normalizer = tuple[str, Callable[[str], str]]


def _header_positions(header: list[str], diag: Diagnostics) -> dict[str, int]:
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for index, raw in enumerate(header):
        name = raw.strip().lstrip("\ufeff").strip().lower()
        column = _ALIASES.get(name, name)
        if column in COLUMNS and column not in positions:
            positions[column] = index
        elif name:
            ignored.append(raw.strip())
    if ignored:
        diag.warn("ignored csv column(s) Amparo does not read: " + ", ".join(ignored))
    return positions


def read_csv(
    lines: Iterable[str], options: ReadOptions, diag: Diagnostics
) -> Iterator[EntryRecord]:
    if csv.field_size_limit() < MAX_CELL_CHARS:
        csv.field_size_limit(MAX_CELL_CHARS)
    reader = csv.reader(lines)
    header: list[str] | None = None
    for row in reader:
        if any(cell.strip() for cell in row):
            header = row
            break
    if header is None:
        return
    positions = _header_positions(header, diag)
    if "signal" not in positions:
        raise diag.fatal(
            f"line {reader.line_num}: the first row must be a header with a signal column",
            hint="start the file with a header such as: signal_type,signal,category,tags",
            number=reader.line_num,
        )
    width = len(header)
    type_at = positions.get("signal_type")
    signal_at = positions["signal"]
    category_at, tags_at = positions.get("category"), positions.get("tags")
    source_at, note_at = positions.get("source_id"), positions.get("note")
    enabled_at = positions.get("enabled")
    by_length = normalizers_by_length()
    fixed: _Normalizer | None = None
    if options.signal_type is not None:
        fixed = (options.signal_type.name, line_normalizer(options.signal_type))
    type_cache: dict[str, _Normalizer | str] = {}

    last_end = reader.line_num
    for row in reader:
        number, last_end = last_end + 1, reader.line_num
        if len(row) < width:
            if not any(cell.strip() for cell in row):
                continue
            row = row + [""] * (width - len(row))
        signal_text = row[signal_at].strip()
        if not signal_text and not any(cell.strip() for cell in row):
            continue
        type_text = row[type_at].strip() if type_at is not None else ""
        normalizer: _Normalizer | str
        if type_text:
            cached = type_cache.get(type_text)
            if cached is None:
                cached = _resolve(type_text)
                type_cache[type_text] = cached
            normalizer = cached
        elif fixed is not None:
            normalizer = fixed
        else:
            found = by_length.get(len(signal_text))
            normalizer = found if found is not None else _length_problem(signal_text)
        if isinstance(normalizer, str):
            diag.problem(number, normalizer)
            continue
        try:
            value = normalizer[1](signal_text)
        except InvalidSignalError as exc:
            diag.problem(number, str(exc))
            continue
        enabled = True
        if enabled_at is not None:
            flag = row[enabled_at].strip().lower()
            if flag in _FALSE:
                enabled = False
            elif flag not in _TRUE:
                diag.problem(number, f"enabled must be true or false, not {row[enabled_at][:40]!r}")
                continue
        yield EntryRecord(
            normalizer[0],
            value,
            (row[category_at].strip() or None) if category_at is not None else None,
            _split_tags(row[tags_at]) if tags_at is not None and row[tags_at] else [],
            (row[source_at].strip() or None) if source_at is not None else None,
            (row[note_at] or None) if note_at is not None else None,
            enabled,
        )


def _split_tags(cell: str) -> list[str]:
    return [tag.strip() for tag in cell.split(TAG_SEPARATOR) if tag.strip()]


def _resolve(type_text: str) -> _Normalizer | str:
    try:
        signal_type = resolve_type_name(type_text)
    except UnknownSignalTypeError as exc:
        return str(exc)
    return signal_type.name, line_normalizer(signal_type)


def _length_problem(signal_text: str) -> str:
    if not signal_text:
        return "empty signal cell"
    if len(signal_text) == 64:
        return AMBIGUOUS_64_HEX + ", or add a signal_type column"
    return (
        f"{signal_text[:80]!r} is not an md5 or sha1 hash and the row names no signal_type; "
        "add a signal_type column or pass --type"
    )


def write_csv(stream: TextIO, entries: Iterable[EntryRecord]) -> int:
    """Write a header and one row per entry. Open files with ``newline=""``."""
    writer = csv.writer(stream)  # "\r\n" rows (RFC 4180): the only way "\r" in a cell is quoted
    writer.writerow(COLUMNS)
    written = 0
    for entry in entries:
        writer.writerow(
            (
                entry.signal_type,
                line_value(entry),
                entry.category or "",
                TAG_SEPARATOR.join(entry.tags),
                entry.source_id or "",
                entry.note or "",
                "true" if entry.enabled else "false",
            )
        )
        written += 1
    return written
