"""The settings the paged HTTP exchanges (StopNCII, ThreatExchange) check alike: the service's
``base_url`` and whole numbers in a range (``page_size``, ``skip_seconds``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from amparo.errors import InputError


def check_base_url(value: Any, example: str) -> str:
    """An http(s) URL without its trailing slash (``example``: the real service's, for the
    hint)."""
    if not isinstance(value, str):
        raise InputError("base_url must be a URL", hint=f"e.g. {example}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"base_url {value!r} is not an http(s) URL", hint=f"e.g. {example}")
    return value.rstrip("/")


def check_int(settings: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    """``settings[key]`` (``default`` when absent): a whole number from ``low`` to ``high``."""
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{key} must be a whole number from {low} to {high}, not {value!r}")
    return value
