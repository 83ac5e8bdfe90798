"""The ``text`` format: one hash per line, the signal type told by the hash's length."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

from amparo.banks.formats.base import (
    LINE_SIGNAL_TYPES,
    Diagnostics,
    ReadOptions,
    line_normalizer,
    line_value,
)
from amparo.banks.model import EntryRecord
from amparo.errors import InputError, InvalidSignalError
from amparo.signals import get_signal_type

log = logging.getLogger(__name__)

AMBIGUOUS_64_HEX = (
    "64 hexadecimal characters could be a pdq or a sha256 hash; "
    "pass --type pdq or --type sha256 (signal_type=) to say which"
)


def normalizers_by_length() -> dict[int, tuple[str, Callable[[str], str]]]:
    md5, sha1 = get_signal_type("md5"), get_signal_type("sha1")
    return {32: (md5.name, md5.normalize), 40: (sha1.name, sha1.normalize)}


def strip_comment(raw: str) -> str:
    """The line without surrounding whitespace and without a ``#`` comment."""
    line = raw.strip()
    if "#" in line:
        line = line.split("#", 1)[0].rstrip()
    return line


def read_text(
    lines: Iterable[str], options: ReadOptions, diag: Diagnostics
) -> Iterator[EntryRecord]:
    fixed = options.signal_type
    if fixed is not None and fixed.name not in LINE_SIGNAL_TYPES:
        raise InputError(
            f"the text format cannot carry {fixed.name} hashes", hint="use the csv format"
        )
    by_length = normalizers_by_length()
    fixed_pair: tuple[str, Callable[[str], str]] | None = None
    if fixed is not None:
        fixed_pair = (fixed.name, line_normalizer(fixed))
    for number, raw in enumerate(lines, start=1):
        line = strip_comment(raw)
        if not line:
            continue
        found = fixed_pair or by_length.get(len(line))
        if found is None:
            diag.problem(number, _length_message(line))
            continue
        name, normalize = found
        try:
            value = normalize(line)
        except InvalidSignalError as exc:
            diag.problem(number, str(exc))
            continue
        yield EntryRecord(name, value)


def _length_message(line: str) -> str:
    if len(line) == 64:
        return AMBIGUOUS_64_HEX
    if " " in line or "\t" in line:
        return f"{line[:80]!r} is not one hash; for '<type> <hash>' lines use the te format"
    return (
        f"{line[:80]!r} is not an md5 (32 hex) or sha1 (40 hex) hash; "
        "for other types pass --type (signal_type=)"
    )


def write_text(stream: TextIO, entries: Iterable[EntryRecord]) -> int:
    """Write one hash per line; every entry must have the same signal type."""
    first_type: str | None = None
    written = skipped = 0
    for entry in entries:
        if entry.signal_type not in LINE_SIGNAL_TYPES:
            skipped += 1
            continue
        if first_type is None:
            first_type = entry.signal_type
        elif entry.signal_type != first_type:
            raise InputError(
                f"the text format holds one signal type per file, but the entries mix "
                f"{first_type} and {entry.signal_type}",
                hint="export as csv or te, which name the type on every line, "
                "or export one signal type at a time",
            )
        stream.write(line_value(entry) + "\n")
        written += 1
    if skipped:
        log.warning("text export skipped %d entries whose signal type is multi-line", skipped)
    return written
