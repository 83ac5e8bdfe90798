"""Text from untrusted places (file names, object keys, a received package's fields) made
safe to print on a terminal.

Rich's ``escape()`` only escapes ``[markup]`` and Rich strips a few control codes but not
ESC, so a file named ``x\\x1b]0;OWNED\\x07.jpg`` would set the terminal's title, recolour
it or worse when its name is printed. :func:`terminal_safe` shows every C0 and C1 control
character and DEL as ``\\xNN`` and every byte of a name that is not UTF-8 (a lone surrogate
from ``os.fsdecode``) the same way, keeping all other Unicode as it is. Only for what goes to
a terminal: reports (JSONL, CSV, HTML) keep names exactly. Standard library only: ``amparo
package`` and ``amparo hash`` import it.
"""

from __future__ import annotations

import os
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_KEEP_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _hex(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def terminal_safe(text: object, *, keep_lines: bool = False) -> str:
    """``text`` (``str()`` of it) with control characters as ``\\xNN``; ``keep_lines`` keeps
    newlines and tabs (for Amparo's own multi-line messages, not for a name on its own)."""
    value = str(text)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = os.fsencode(value)
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogatepass")
        value = raw.decode("utf-8", "backslashreplace")
    return (_CONTROL_KEEP_LINES if keep_lines else _CONTROL).sub(_hex, value)
