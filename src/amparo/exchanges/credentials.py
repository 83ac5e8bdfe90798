"""A collaboration's secret, read from where its reference points, when it is needed.

The database stores only the reference (``file:/path`` or ``env:NAME``), never the secret,
so a database dump or backup leaks no partner's API token, and a secret is rotated by
changing the file or the variable without touching Amparo. The value is a JSON object
(``{"user": ..., "password": ...}``) or, for a single secret, the bare text (read as
``{"token": text}``). Nothing here logs or echoes a secret's value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from amparo.errors import CredentialsError, InputError
from amparo.exchanges.model import Credentials

_HINT = "use file:/path/to/secret (a JSON object or one token) or env:VARIABLE_NAME"


def check_reference(ref: str | None) -> str | None:
    """Validate a reference's syntax (what ``add`` stores); the secret itself may be
    provisioned later, so neither the file nor the variable need exist yet."""
    if ref is None or ref == "":
        return None
    kind, sep, where = ref.partition(":")
    if not sep or kind not in ("file", "env") or not where.strip():
        # Not quoted: a mistyped reference may be the secret itself.
        raise InputError("invalid credentials reference (not file:... or env:...)", hint=_HINT)
    if kind == "env" and not where.replace("_", "").isalnum():
        raise InputError(f"invalid environment variable name in {ref!r}", hint=_HINT)
    return ref


def load_credentials(
    ref: str | None, *, environ: Mapping[str, str] | None = None
) -> Credentials | None:
    """The credentials ``ref`` points at (None when there is no reference)."""
    ref = check_reference(ref)
    if ref is None:
        return None
    kind, _, where = ref.partition(":")
    if kind == "file":
        path = Path(where).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CredentialsError(
                f"the credentials file {str(path)!r} does not exist",
                hint="create it (readable only by Amparo's user) or change the collaboration's "
                "credentials (`amparo exchange` update)",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialsError(
                f"cannot read the credentials file {str(path)!r}: {type(exc).__name__}",
                hint="check its permissions and that it is UTF-8 text",
            ) from None
        return _parse(text, f"file {str(path)!r}")
    env = os.environ if environ is None else environ
    value = env.get(where)
    if value is None or not value.strip():
        raise CredentialsError(
            f"the environment variable {where} holding the credentials is not set",
            hint=f"set {where} in the environment of every Amparo process that fetches",
        )
    return _parse(value, f"variable {where}")


def _parse(text: str, what: str) -> Credentials:
    stripped = text.strip()
    if not stripped:
        raise CredentialsError(f"the credentials {what} is empty", hint=_HINT)
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            # Never quote the text: it is a secret.
            raise CredentialsError(
                f"the credentials {what} starts like JSON but is not valid JSON",
                hint='write a JSON object such as {"user": "...", "password": "..."}',
            ) from None
        if not isinstance(data, dict):
            raise CredentialsError(f"the credentials {what} is not a JSON object", hint=_HINT)
        return Credentials({str(k): "" if v is None else str(v) for k, v in data.items()})
    return Credentials({"token": stripped})
