"""What every hash-list format shares: the import result, problem reporting, type names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from amparo.banks.model import EntryRecord
from amparo.errors import FormatError
from amparo.signals import SignalType, get_signal_type, signal_types

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


def line_normalizer(signal_type: type[SignalType]) -> Callable[[str], str]:
    """How a line format normalises a value of ``signal_type`` (vpdq: to the compact form)."""
    return signal_type.from_line


_TO_LINE: dict[str, Callable[[str], str]] = {st.name: st.to_line for st in signal_types()}


def line_value(entry: EntryRecord) -> str:
    """An entry's value as one line (a vpdq stored as reference text becomes compact)."""
    to_line = _TO_LINE.get(entry.signal_type)
    return entry.signal if to_line is None else to_line(entry.signal)
