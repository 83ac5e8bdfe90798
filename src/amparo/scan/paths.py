"""How scanned paths are written down: exactly, even when they are not valid UTF-8.

On POSIX a file name is bytes. Names from seized Windows or Latin-1 drives often are not
UTF-8, and Python holds such a name as a ``str`` with lone surrogates (``os.fsdecode``, the
``surrogateescape`` error handler), which no UTF-8 file, database or terminal accepts. Inside
the scan paths stay in that form (so they open and compare exactly); wherever one is written,
it becomes:

- ``path``: readable text, each byte that is not UTF-8 shown as ``\\xNN``;
- ``path_b64``: only for such names, the exact bytes in base64 (``\\xNN`` alone would be
  ambiguous: a name may contain a backslash).

:func:`path_from_fields` turns the two back into the path the walk yields, so a resumed scan
recognises the name.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping

from amparo.errors import FormatError


def path_bytes(path: str) -> bytes:
    """The exact bytes of a path the walk yielded (archive members' names included)."""
    try:
        return os.fsencode(path)
    except UnicodeEncodeError:  # a surrogate not made by surrogateescape: keep it, losslessly
        return path.encode("utf-8", "surrogatepass")


def is_text(path: str) -> bool:
    """Whether the path is valid Unicode text (its bytes were UTF-8)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display_path(path: str) -> str:
    """The path as text that can be written anywhere: bytes that are not UTF-8 as ``\\xNN``."""
    if is_text(path):
        return path
    return path_bytes(path).decode("utf-8", "backslashreplace")


def path_fields(path: str) -> dict[str, str]:
    """``{"path": ...}``, plus ``"path_b64"`` (the exact bytes) when the name is not UTF-8."""
    if is_text(path):
        return {"path": path}
    return {
        "path": display_path(path),
        "path_b64": base64.b64encode(path_bytes(path)).decode("ascii"),
    }


def path_from_fields(data: Mapping[str, object]) -> str:
    """The path that :func:`path_fields` wrote down, exactly as the walk yields it."""
    encoded = data.get("path_b64")
    if encoded is None:
        return str(data["path"])
    try:
        raw = base64.b64decode(str(encoded), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"path_b64 is not base64: {exc}") from exc
    return os.fsdecode(raw)
