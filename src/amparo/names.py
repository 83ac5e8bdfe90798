"""One rule for the names people give things: banks, rules, webhook endpoints, API keys.

A name is 1-100 ASCII letters, digits, ``_``, ``-`` or ``.``, not starting with ``-`` or
``.``: it goes into URLs (``/v1/banks/{name}``), command lines (where a leading ``-`` reads as
a flag), file names of exports and the audit log, so every kind of name follows the same rule
and one message explains it.
"""

from __future__ import annotations

import string

from amparo.errors import InputError

MAX_NAME = 100
NAME_CHARS = frozenset(string.ascii_letters + string.digits + "_-.")
NAME_HINT = f"use up to {MAX_NAME} letters, digits, '_', '-' or '.', not starting with '-' or '.'"


def validate_name(name: object, what: str) -> str:
    """``name`` if it follows the rule, else :class:`InputError` naming ``what`` it names
    ("bank", "rule", "endpoint", "key")."""
    if (
        not isinstance(name, str)
        or not name
        or len(name) > MAX_NAME
        or not set(name) <= NAME_CHARS
        or name[0] in "-."
    ):
        raise InputError(f"invalid {what} name {name!r}", hint=NAME_HINT)
    return name
