"""What every hash-list format shares: the import result, problem reporting, type names."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from amparo.banks.model import EntryRecord
from amparo.errors import FormatError, InvalidSignalError
from amparo.signals import SignalType, get_signal_type
from amparo.signals.pdq import PdqSignal
from amparo.signals.vpdq import COMPACT_PREFIX, VpdqFrame, VpdqFrames, parse_vpdq

MAX_PROBLEMS = 1000
"""Problems kept in ``ImportResult.problems``; ``problem_count`` counts all of them."""

LINE_SIGNAL_TYPES = ("pdq", "md5", "sha1", "sha256", "vpdq")
"""Signal types with a one-line form without spaces: what the line formats carry (vpdq in
its compact ``vpdq1:`` form)."""

IGNORE = "ignore"
"""Category name meaning "no hash worth matching"; ``skip_ignored=True`` drops such records."""


@dataclass
class ImportResult:
    """Entries read from a hash-list file, and what could not be read.

    ``problems`` holds ``(number, message)`` pairs: the 1-based line number for the line
    formats (text, csv, te) and the 1-based Media record number for vics. Only the first
    ``MAX_PROBLEMS`` are kept; ``problem_count`` counts every skipped line or record.
    ``warnings`` are file-level notes (ignored columns, unsupported types) that skip nothing
    silently and never fail strict mode.
    """

    entries: list[EntryRecord] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problem_count: int = 0


@dataclass(frozen=True)
class ReadOptions:
    """Options of one read, resolved once so per-line code does no lookups."""

    signal_type: type[SignalType] | None = None
    category_map: Mapping[int | str, str] = field(default_factory=dict)
    category_map_given: bool = False
    skip_ignored: bool = False


class Diagnostics:
    """Collects problems and warnings into an ImportResult; raises on the first in strict mode."""

    def __init__(self, result: ImportResult, *, strict: bool, source_name: str | None) -> None:
        self.result = result
        self.strict = strict
        self.source_name = source_name

    def problem(self, number: int, message: str, *, unit: str = "line") -> None:
        if self.strict:
            where = f"{self.source_name}: " if self.source_name else ""
            raise FormatError(
                f"{where}{unit} {number}: {message}",
                hint="fix or remove that entry, or import without strict mode to skip bad ones",
                problems=[(number, message)],
            )
        self.result.problem_count += 1
        if len(self.result.problems) < MAX_PROBLEMS:
            self.result.problems.append((number, message))

    def warn(self, message: str) -> None:
        self.result.warnings.append(message)

    def fatal(self, message: str, *, hint: str, number: int | None = None) -> FormatError:
        """A FormatError for a file that cannot be read at all, whatever the mode."""
        where = f"{self.source_name}: " if self.source_name else ""
        problems = [(number, message)] if number is not None else []
        return FormatError(f"{where}{message}", hint=hint, problems=problems)


TE_TYPE_NAMES: Mapping[str, str] = {
    "pdq": "pdq",
    "video_md5": "md5",
    "video_sha256": "sha256",
    "vpdq": "vpdq",
}
"""python-threatexchange signal type names that differ from or equal Amparo's."""

TE_UNSUPPORTED = frozenset({"url", "url_md5", "raw_text", "trend_query", "text_tlsh", "pdq_ocr"})
"""python-threatexchange types Amparo does not read from line formats; skipped with a warning."""

AMPARO_TO_TE: Mapping[str, str] = {
    "pdq": "pdq",
    "md5": "video_md5",
    "sha256": "video_sha256",
    "vpdq": "vpdq",
}


def resolve_type_name(name: str) -> type[SignalType]:
    """Resolve an Amparo or python-threatexchange signal type name (case-insensitive).

    Raises UnknownSignalTypeError for names neither knows.
    """
    key = name.strip().lower()
    return get_signal_type(TE_TYPE_NAMES.get(key, key))


def normalize_vpdq_line(text: str) -> str:
    """A vPDQ in any form Amparo reads, as the compact one-line form the line formats and the
    database carry: compact (``vpdq1:...``), the reference text, or python-threatexchange's
    JSON list of ``"pdq_hex,quality,timestamp"`` strings (its ``vpdq`` signal)."""
    value = text.strip()
    if value.startswith("["):
        return te_vpdq_frames(value).to_compact()
    return parse_vpdq(value).to_compact()


def te_vpdq_frames(text: str) -> VpdqFrames:
    """Parse python-threatexchange's vpdq signal: a JSON list of ``"pdq_hex,quality,
    timestamp"``. It has no frame numbers: frames are numbered in list order."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _te_invalid(f"not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise _te_invalid("JSON nested too deeply") from None
    if not isinstance(items, list) or not items:
        raise _te_invalid("expected a non-empty JSON list")
    frames: list[VpdqFrame] = []
    for number, item in enumerate(items):
        parts = item.split(",") if isinstance(item, str) else []
        if len(parts) != 3:
            raise _te_invalid(f"frame {number}: expected 'pdq_hex,quality,timestamp'")
        try:
            quality, timestamp = int(parts[1]), float(parts[2])
        except ValueError:
            raise _te_invalid(f"frame {number}: quality or timestamp is not a number") from None
        if not 0 <= quality <= 100 or not 0 <= timestamp < float("inf"):
            raise _te_invalid(f"frame {number}: quality or timestamp out of range")
        try:
            pdq_hex = PdqSignal.normalize(parts[0])
        except InvalidSignalError as exc:
            raise _te_invalid(f"frame {number}: {exc.message}") from None
        frames.append(VpdqFrame(number, quality, pdq_hex, round(timestamp, 3)))
    return VpdqFrames(tuple(frames))


def _te_invalid(message: str) -> InvalidSignalError:
    return InvalidSignalError(
        f"invalid threatexchange vpdq: {message}",
        hint='threatexchange writes vpdq as a JSON list of "pdq_hex,quality,timestamp" strings',
    )


def line_normalizer(signal_type: type[SignalType]) -> Callable[[str], str]:
    """How a line format normalises a value of ``signal_type`` (vpdq: to the compact form)."""
    if signal_type.name == "vpdq":
        return normalize_vpdq_line
    return signal_type.normalize


def line_value(entry: EntryRecord) -> str:
    """An entry's value as one line (a vpdq stored as reference text becomes compact)."""
    if entry.signal_type == "vpdq" and not entry.signal.startswith(COMPACT_PREFIX):
        return parse_vpdq(entry.signal).to_compact()
    return entry.signal
