"""Signal types: how content is turned into a comparable hash, and how hashes are compared.

Each signal type declares a stable ``name`` (stored in the database and in hash-list files;
never derived from a class name), validates and normalises its text form, and measures the
distance between two values. It also declares the traits the rest of Amparo asks about instead
of testing names: how its values are looked up (``index_kind``), their fixed-width byte key
(``key_bytes``), whether a value is too long to show or journal (``long_value``), and how the
one-value-a-line hash-list formats read and write it (``from_line``, ``to_line``,
``read_value``).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import ClassVar, Literal

from amparo.errors import InternalError, InvalidSignalError, UnknownSignalTypeError

IndexKind = Literal["hamming", "exact", "video"]
"""How the matcher looks a signal type's values up: ``hamming`` in the PDQ index, within a
distance threshold (per bank; dihedral variants where a bank opts in); ``exact`` in a digest
table, identical values only; ``video`` frame by frame in the video matcher (vPDQ)."""


class SignalType(ABC):
    """A way of hashing content. Subclasses are stateless singletons."""

    name: ClassVar[str]
    """Stable identifier, e.g. ``"pdq"``. Stored; never change it."""
    exact: ClassVar[bool]
    """True when only identical values match (digests); False for perceptual hashes."""
    index_kind: ClassVar[IndexKind]
    """How values are looked up (see ``IndexKind``)."""
    key_bytes: ClassVar[int | None] = None
    """Width of the fixed-width byte key an index stores for a value (the canonical hex
    decoded); None for types with no such key (vPDQ)."""
    long_value: ClassVar[bool] = False
    """True when a value runs to kilobytes (a vPDQ): listings show a summary of it, and
    reports and journals leave it out."""
    examples: ClassVar[tuple[str, ...]]
    """Valid example values, reused by tests and demos."""

    @classmethod
    @abstractmethod
    def normalize(cls, text: str) -> str:
        """Return the canonical text form of ``text`` or raise InvalidSignalError."""

    @classmethod
    @abstractmethod
    def distance(cls, a: str, b: str) -> int:
        """Distance between two canonical values (0 means identical)."""

    # -- the one-value-a-line hash-list formats (text, csv, te) --------------------------

    @classmethod
    def from_line(cls, text: str) -> str:
        """A value read from a line format, as it is stored (raise InvalidSignalError)."""
        return cls.normalize(text)

    @classmethod
    def to_line(cls, value: str) -> str:
        """A stored value as one line without spaces, as the line formats write it."""
        return value

    @classmethod
    def read_value(cls, rest: str) -> str:
        """Read a value from the start of ``rest`` (what follows the type name on a line of
        the te format; metadata may follow the value) and return it as ``from_line`` does."""
        return cls.from_line(rest.split()[0])


class HexDigestSignal(SignalType):
    """A cryptographic digest of the file bytes, written as lowercase hex."""

    exact = True
    index_kind = "exact"
    hex_length: ClassVar[int]
    _pattern: ClassVar[re.Pattern[str]] = re.compile(r"[0-9a-f]+")

    @classmethod
    def normalize(cls, text: str) -> str:
        value = text.strip().lower()
        if len(value) != cls.hex_length or not cls._pattern.fullmatch(value):
            raise InvalidSignalError(
                f"{text[:80]!r} is not a valid {cls.name} hash",
                hint=f"a {cls.name} hash is {cls.hex_length} hexadecimal characters",
            )
        return value

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return 0 if a == b else 1


_REGISTRY: dict[str, type[SignalType]] = {}


def register(signal_type: type[SignalType]) -> type[SignalType]:
    if signal_type.name in _REGISTRY:
        # Two classes claiming one stored name would mix their hashes: a bug, at import time.
        raise InternalError(f"signal type {signal_type.name!r} registered twice")
    _REGISTRY[signal_type.name] = signal_type
    return signal_type


def get_signal_type(name: str) -> type[SignalType]:
    """Look up a signal type by its stable name (case-insensitive)."""
    try:
        return _REGISTRY[name.strip().lower()]
    except KeyError:
        raise UnknownSignalTypeError(
            f"unknown signal type {name!r}",
            hint="known types: " + ", ".join(sorted(_REGISTRY)),
        ) from None


def signal_type_names() -> list[str]:
    return sorted(_REGISTRY)


def signal_types(kind: IndexKind | None = None) -> list[type[SignalType]]:
    """The registered signal types (those of one index kind, if given), by name."""
    return [_REGISTRY[n] for n in sorted(_REGISTRY) if kind in (None, _REGISTRY[n].index_kind)]


def normalize_signal(signal_type: str, value: str) -> tuple[str, str]:
    """Validate ``value`` as ``signal_type``; return ``(type_name, canonical_value)``."""
    st = get_signal_type(signal_type)
    return st.name, st.normalize(value)
