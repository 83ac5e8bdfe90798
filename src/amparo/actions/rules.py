"""Action rules: conditions on a find, and the actions to take when they hold.

A rule matches a find (:class:`~amparo.events.MatchedContent`) when its source condition holds
and at least one of the find's matches satisfies every match condition. A condition left out
does not restrict; a rule with no condition at all matches every find.

Rules are plain data, read from and written to JSON (the API, ``amparo rules add --file``,
the database) with :meth:`Rule.from_json` / :meth:`Rule.to_json`; invalid input raises
:class:`~amparo.errors.InputError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from amparo.errors import InputError
from amparo.events import SOURCE_KINDS, MatchedContent
from amparo.matching import PATHS, Match
from amparo.names import validate_name

ACTION_TYPES = ("review", "webhook", "quarantine", "report")
"""``review``: open or extend a case; ``webhook``: send a signed event to an endpoint;
``quarantine``: preserve (copy) or move the media; ``report``: queue a report draft."""
QUARANTINE_MODES = ("copy", "move")
MAX_LIST = 100
MAX_PRIORITY = 1_000_000_000
"""Priorities fit the database's 32-bit integer column."""


@dataclass(frozen=True)
class Conditions:
    """What a find must look like for a rule to act. ``None`` means "any"."""

    banks: tuple[str, ...] | None = None
    categories: tuple[str, ...] | None = None
    signal_types: tuple[str, ...] | None = None
    max_distance: int | None = None
    """Only matches at most this far (PDQ bits; exact digests are at distance 0)."""
    source_kinds: tuple[str, ...] | None = None
    """``api``, ``scan`` or ``cli``."""
    paths: tuple[str, ...] | None = None
    """Only matches found this way (:data:`amparo.matching.PATHS`: ``plain``, ``trimmed``,
    ``variant``, ``dihedral``), e.g. to send mirrored or cropped finds to review only."""

    def satisfied_by(self, match: Match) -> bool:
        """Whether one match meets every match condition (the source is checked apart)."""
        return (
            (self.banks is None or match.bank in self.banks)
            and (self.categories is None or match.category in self.categories)
            and (self.signal_types is None or match.signal_type in self.signal_types)
            and (self.max_distance is None or match.distance <= self.max_distance)
            and (self.paths is None or match.path in self.paths)
        )

    def matches(self, content: MatchedContent) -> bool:
        if self.source_kinds is not None and content.source.kind not in self.source_kinds:
            return False
        return any(self.satisfied_by(m) for m in content.matches)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("banks", "categories", "signal_types", "source_kinds", "paths"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value)
        if self.max_distance is not None:
            out["max_distance"] = self.max_distance
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Conditions:
        data = dict(data or {})
        unknown = set(data) - {
            "banks",
            "categories",
            "signal_types",
            "max_distance",
            "source_kinds",
            "paths",
        }
        if unknown:
            raise InputError(
                f"unknown rule condition {sorted(unknown)[0]!r}",
                hint="conditions are banks, categories, signal_types, max_distance, "
                "source_kinds, paths",
            )
        max_distance = data.get("max_distance")
        if max_distance is not None and (
            isinstance(max_distance, bool)
            or not isinstance(max_distance, int)
            or not 0 <= max_distance <= 256
        ):
            raise InputError(
                f"max_distance {max_distance!r} is not a distance",
                hint="use a whole number of bits, 0-256 (PDQ's usual threshold is 31)",
            )
        source_kinds = _names(data.get("source_kinds"), "source_kinds")
        for kind in source_kinds or ():
            if kind not in SOURCE_KINDS:
                raise InputError(
                    f"unknown source kind {kind!r}", hint="use " + ", ".join(SOURCE_KINDS)
                )
        paths = _names(data.get("paths"), "paths")
        for path in paths or ():
            if path not in PATHS:
                raise InputError(
                    f"paths: unknown match path {path!r}",
                    hint="use " + ", ".join(PATHS) + " (how a match was found)",
                )
        return cls(
            banks=_names(data.get("banks"), "banks"),
            categories=_names(data.get("categories"), "categories"),
            signal_types=_names(data.get("signal_types"), "signal_types"),
            max_distance=max_distance,
            source_kinds=source_kinds,
            paths=paths,
        )


@dataclass(frozen=True)
class ActionSpec:
    """One action of a rule."""

    type: str
    """One of ``ACTION_TYPES``."""
    endpoint: str | None = None
    """``webhook``: the endpoint's name (``amparo webhooks add``)."""
    mode: str | None = None
    """``quarantine``: ``copy`` (into the evidence store; the default) or ``move`` (into
    ``quarantine_dir``; scans only)."""

    @property
    def key(self) -> tuple[str, str | None]:
        """What makes two actions the same (run once per find however many rules ask)."""
        return (self.type, self.endpoint or self.mode)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.endpoint is not None:
            out["endpoint"] = self.endpoint
        if self.mode is not None:
            out["mode"] = self.mode
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> ActionSpec:
        if isinstance(data, str):
            data = {"type": data}
        if not isinstance(data, Mapping):
            raise InputError(
                f"an action must be an object like {{'type': 'review'}}, not {data!r}",
            )
        kind = data.get("type")
        if kind not in ACTION_TYPES:
            raise InputError(f"unknown action {kind!r}", hint="use " + ", ".join(ACTION_TYPES))
        allowed = {"type"} | ({"endpoint"} if kind == "webhook" else set())
        allowed |= {"mode"} if kind == "quarantine" else set()
        unknown = set(data) - allowed
        if unknown:
            raise InputError(f"action {kind!r} takes no {sorted(unknown)[0]!r}")
        if kind == "webhook":
            endpoint = data.get("endpoint")
            if not isinstance(endpoint, str):
                raise InputError(
                    "a webhook action needs an endpoint name",
                    hint='e.g. {"type": "webhook", "endpoint": "platform"}',
                )
            return cls("webhook", endpoint=validate_name(endpoint, "endpoint"))
        if kind == "quarantine":
            mode = data.get("mode", "copy")
            if mode not in QUARANTINE_MODES:
                raise InputError(f"unknown quarantine mode {mode!r}", hint="use copy or move")
            return cls("quarantine", mode=str(mode))
        return cls(str(kind))


@dataclass(frozen=True)
class Rule:
    """One version of an action rule."""

    name: str
    actions: tuple[ActionSpec, ...]
    conditions: Conditions = field(default_factory=Conditions)
    enabled: bool = True
    priority: int = 100
    """Rules run in ascending priority, then by name."""
    description: str = ""
    version: int = 0
    """Set by the store: 1 for the first version, one more for each change."""
    created_at: datetime | None = None
    created_by: str | None = None
    deleted: bool = False
    """Only in history: the version that removed the rule."""

    def matches(self, content: MatchedContent) -> bool:
        return self.enabled and not self.deleted and self.conditions.matches(content)

    def to_json(self) -> dict[str, Any]:
        """The rule as the API and ``amparo rules show`` give it (and ``from_json`` takes)."""
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "enabled": self.enabled,
            "priority": self.priority,
            "description": self.description,
            "conditions": self.conditions.to_json(),
            "actions": [a.to_json() for a in self.actions],
        }
        if self.created_at is not None:
            out["created_at"] = self.created_at.isoformat()
            out["created_by"] = self.created_by
        if self.deleted:
            out["deleted"] = True
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, name: str | None = None) -> Rule:
        """Validate a rule given as JSON (``version``/``created_*`` are ignored: the store
        sets them). ``name`` overrides (or supplies) the name."""
        if not isinstance(data, Mapping):
            raise InputError("a rule must be a JSON object")
        known = {"name", "enabled", "priority", "description", "conditions", "actions"}
        unknown = set(data) - known - {"version", "created_at", "created_by", "deleted"}
        if unknown:
            raise InputError(
                f"unknown rule field {sorted(unknown)[0]!r}",
                hint="a rule has " + ", ".join(sorted(known)),
            )
        rule_name = validate_name(str(name if name is not None else data.get("name", "")), "rule")
        actions_raw = data.get("actions")
        if not isinstance(actions_raw, Sequence) or isinstance(actions_raw, str | bytes):
            raise InputError(
                f"rule {rule_name!r} needs a list of actions",
                hint='e.g. "actions": [{"type": "review"}]',
            )
        actions = tuple(ActionSpec.from_json(a) for a in actions_raw)
        if not actions:
            raise InputError(
                f"rule {rule_name!r} has no actions",
                hint="add review, webhook, quarantine or report",
            )
        if len(actions) > 20:
            raise InputError("a rule may have at most 20 actions")
        priority = data.get("priority", 100)
        if (
            isinstance(priority, bool)
            or not isinstance(priority, int)
            or not -MAX_PRIORITY <= priority <= MAX_PRIORITY
        ):
            raise InputError(
                f"priority {priority!r} is not a whole number "
                f"from -{MAX_PRIORITY:,} to {MAX_PRIORITY:,}",
                hint="lower runs first; the default is 100",
            )
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            raise InputError(f"enabled must be true or false, not {enabled!r}")
        description = data.get("description", "")
        if not isinstance(description, str) or len(description) > 10_000:
            raise InputError("description must be text of at most 10,000 characters")
        conditions = data.get("conditions") or {}
        if not isinstance(conditions, Mapping):
            raise InputError("conditions must be an object", hint='e.g. {"banks": ["known"]}')
        return cls(
            name=rule_name,
            actions=actions,
            conditions=Conditions.from_json(conditions),
            enabled=enabled,
            priority=priority,
            description=description,
        )


def _names(value: Any, what: str) -> tuple[str, ...] | None:
    if value is None or (isinstance(value, Sequence) and not isinstance(value, str) and not value):
        return None  # an empty list is no condition, like a missing one
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not all(isinstance(v, str) and v for v in value):
        raise InputError(f"{what} must be a list of names", hint=f'e.g. "{what}": ["x"]')
    if len(value) > MAX_LIST or any(len(v) > 100 for v in value):
        raise InputError(f"{what}: at most {MAX_LIST} names of up to 100 characters")
    return tuple(dict.fromkeys(value))


def matching_rules(rules: Sequence[Rule], content: MatchedContent) -> list[Rule]:
    """The rules that act on ``content``, in the order they run."""
    return [r for r in sorted(rules, key=lambda r: (r.priority, r.name)) if r.matches(content)]
