"""A collaboration's settings checked at add and update: by its exchange type, and against
what only the installation knows."""

from __future__ import annotations

from typing import Any

from amparo.config import Settings
from amparo.errors import InputError
from amparo.exchanges.base import Exchange
from amparo.exchanges.file import list_path


def checked_settings(
    cls: type[Exchange], given: dict[str, Any], installation: Settings
) -> dict[str, Any]:
    """The exchange type's own check, with what only the installation knows (where `file`
    lists may be read from); a value of a kind the check did not expect (a list where text
    goes, NaN, a 5,000-digit number) is bad input, not a crash."""
    try:
        settings = cls.check_settings(dict(given))
    except (TypeError, ValueError, OverflowError, KeyError, AttributeError) as exc:
        raise InputError(
            f"invalid settings for the {cls.kind} exchange: {type(exc).__name__}: {str(exc)[:200]}",
            hint=f"see `amparo exchange types` and docs/exchanges.md for the {cls.kind} settings",
        ) from None
    if cls.kind == "file":
        settings["path"] = str(list_path(str(settings["path"]), installation))
    return settings
