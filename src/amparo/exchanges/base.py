"""What every exchange implements, and the registry of exchange types.

An exchange is constructed from a collaboration's settings and credentials (plus what the
installation provides: an HTTP client with retries, the settings, a clock) and does three
things: check its settings, fetch changes since a checkpoint as a stream of batches, and,
optionally, send a reviewer's opinion back. It knows nothing of storage: the fetch runner
(:mod:`amparo.exchanges.runner`) commits what it yields.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from amparo.clock import Clock, utc_now
from amparo.config import Settings
from amparo.errors import InputError
from amparo.exchanges.http import RetryingClient
from amparo.exchanges.model import Batch, Checkpoint, Credentials, Opinion


@dataclass
class ExchangeContext:
    """What the installation gives every exchange."""

    settings: Settings
    http: RetryingClient
    clock: Clock = utc_now
    organisation: str = ""
    """This installation's ``organisation_id`` (federation loop detection)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Installation services an exchange may need (e.g. the feed signing key's path)."""


class Exchange(ABC):
    """One kind of hash-sharing source. Subclasses set ``kind`` and ``checkpoint_type``."""

    kind: ClassVar[str]
    description: ClassVar[str] = ""
    checkpoint_type: ClassVar[type[Checkpoint]] = Checkpoint
    supports_feedback: ClassVar[bool] = False
    needs_credentials: ClassVar[bool] = False

    def __init__(
        self, settings: dict[str, Any], credentials: Credentials | None, context: ExchangeContext
    ) -> None:
        self.settings = self.check_settings(dict(settings))
        self.credentials = credentials
        self.context = context

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """Validate and normalise the collaboration's settings; raise :class:`InputError`
        with a hint naming what is missing. The default accepts none."""
        if settings:
            raise InputError(
                f"the {cls.kind} exchange takes no settings (got {', '.join(sorted(settings))})"
            )
        return settings

    @abstractmethod
    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[Batch]:
        """Changes since ``checkpoint`` (None or stale: everything), in order, as batches.
        Each batch's ``checkpoint`` is where to resume once it is stored. Raise
        :class:`~amparo.errors.ExchangeError` when the source fails (after retries): the
        runner keeps what was committed and records the error."""

    def send_opinion(self, opinion: Opinion) -> None:
        """Tell the source what a reviewer decided about one of its records."""
        raise InputError(f"the {self.kind} exchange takes no feedback")

    def refetch(self, retry: dict[str, Any]) -> Iterator[Batch]:
        """Fetch a quarantined page (or time window) again from what its
        :class:`Malformed` ``retry`` said, as the batches it now reads as (their checkpoints
        are ignored: the page is re-applied out of order, so an exchange should return only
        what cannot undo newer updates). Nothing yielded: it cannot be retried yet; raise
        :class:`~amparo.errors.ExchangeError` when it is still unreadable. The default
        retries nothing."""
        return iter(())

    def load_checkpoint(self, data: dict[str, Any] | None) -> Checkpoint | None:
        if data is None:
            return None
        return self.checkpoint_type.from_json(data)


ExchangeFactory = Callable[[dict[str, Any], Credentials | None, ExchangeContext], Exchange]

_REGISTRY: dict[str, type[Exchange]] = {}


def register(cls: type[Exchange]) -> type[Exchange]:
    """Class decorator: make an exchange type available by its ``kind``."""
    _REGISTRY[cls.kind] = cls
    return cls


def exchange_types() -> dict[str, type[Exchange]]:
    """Every registered exchange type by kind (importing the built-in ones first)."""
    # By name, not an import statement: the built-in types import this module to register
    # themselves, and a static import back would be a module cycle.
    importlib.import_module("amparo.exchanges.builtin")

    return dict(sorted(_REGISTRY.items()))


def exchange_type(kind: str) -> type[Exchange]:
    types = exchange_types()
    if kind not in types:
        raise InputError(f"unknown exchange type {kind!r}", hint=f"use one of: {', '.join(types)}")
    return types[kind]
