"""Signal types: how content is turned into a comparable hash, and how hashes are compared.

Each signal type declares a stable ``name`` (stored in the database and in hash-list files;
never derived from a class name), validates and normalises its text form, and measures the
distance between two values.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import ClassVar

from amparo.errors import InternalError, InvalidSignalError, UnknownSignalTypeError


class SignalType(ABC):
    """A way of hashing content. Subclasses are stateless singletons."""

    name: ClassVar[str]
    """Stable identifier, e.g. ``"pdq"``. Stored; never change it."""
    exact: ClassVar[bool]
    """True when only identical values match (digests); False for perceptual hashes."""
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


class HexDigestSignal(SignalType):
    """A cryptographic digest of the file bytes, written as lowercase hex."""

    exact = True
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


def normalize_signal(signal_type: str, value: str) -> tuple[str, str]:
    """Validate ``value`` as ``signal_type``; return ``(type_name, canonical_value)``."""
    st = get_signal_type(signal_type)
    return st.name, st.normalize(value)
