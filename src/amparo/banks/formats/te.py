"""The ``te`` format: ``<signal_type> <hash>`` per line, as python-threatexchange writes it.

``threatexchange hash photo`` prints ``pdq <hash>``; ``threatexchange dataset -S`` prints the
type, the hash and then the collaboration and metadata, which are ignored here. With photo
pre-processing it prefixes a rotation name (``ROTATE90 pdq <hash>``), which is skipped.

``vpdq`` lines are read in threatexchange's form (``vpdq ["<pdq_hex>,<quality>,<timestamp>",
...]``, a JSON list that contains spaces) and in Amparo's compact form (``vpdq vpdq1:...``),
and written in the compact form, which keeps the cropped frames and the duration.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TextIO

from amparo.banks.formats.base import (
    AMPARO_TO_TE,
    LINE_SIGNAL_TYPES,
    TE_TYPE_NAMES,
    TE_UNSUPPORTED,
    Diagnostics,
    ReadOptions,
    line_value,
)
from amparo.banks.formats.text import strip_comment
from amparo.banks.model import EntryRecord
from amparo.errors import InvalidSignalError
from amparo.signals import SignalType, get_signal_type

log = logging.getLogger(__name__)


def _known_types() -> dict[str, type[SignalType]]:
    known = {name: get_signal_type(name) for name in LINE_SIGNAL_TYPES}
    for te_name, name in TE_TYPE_NAMES.items():
        known[te_name] = known[name]
    return known


def read_te(lines: Iterable[str], options: ReadOptions, diag: Diagnostics) -> Iterator[EntryRecord]:
    # Each line names its own type, so options.signal_type is not needed here.
    known = _known_types()
    unsupported: Counter[str] = Counter()
    for number, raw in enumerate(lines, start=1):
        line = strip_comment(raw)
        if not line:
            continue
        tokens = line.split()
        first = tokens[0].lower()
        # "ROTATE90 pdq <hash>" comes from threatexchange's --photo-preprocess=rotations
        rotated = first not in known and len(tokens) >= 3 and tokens[1].lower() in known
        type_at = 1 if rotated and first not in TE_UNSUPPORTED else 0
        type_name = tokens[type_at].lower()
        if type_name in TE_UNSUPPORTED:
            unsupported[type_name] += 1
            continue
        signal_type = known.get(type_name)
        if signal_type is None:
            diag.problem(
                number,
                f"unknown signal type {tokens[type_at][:40]!r}; expected one of "
                + ", ".join(sorted(known)),
            )
            continue
        if len(tokens) <= type_at + 1:
            diag.problem(number, f"no hash after the signal type {type_name!r}")
            continue
        try:
            # what follows the type token; a vpdq may be a JSON list with spaces inside
            value = signal_type.read_value(line.split(None, type_at + 1)[type_at + 1])
        except InvalidSignalError as exc:
            diag.problem(number, str(exc))
            continue
        yield EntryRecord(signal_type.name, value)
    for type_name, count in sorted(unsupported.items()):
        diag.warn(f"skipped {count} {type_name} line(s): Amparo does not match that signal type")


def write_te(stream: TextIO, entries: Iterable[EntryRecord]) -> int:
    """Write ``<te type name> <hash>`` lines; sha1 keeps its own name (TE has no sha1 type)."""
    written = skipped = 0
    for entry in entries:
        if entry.signal_type not in LINE_SIGNAL_TYPES:
            skipped += 1
            continue
        name = AMPARO_TO_TE.get(entry.signal_type, entry.signal_type)
        stream.write(f"{name} {line_value(entry)}\n")
        written += 1
    if skipped:
        log.warning("te export skipped %d entries whose signal type is multi-line", skipped)
    return written
