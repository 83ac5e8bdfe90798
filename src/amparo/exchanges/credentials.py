"""A collaboration's secret, read from where its reference points, when it is needed.

The database stores only the reference (``file:/path`` or ``env:NAME``), never the secret,
so a database dump or backup leaks no partner's API token, and a secret is rotated by
changing the file or the variable without touching Amparo. The value is a JSON object
(``{"user": ..., "password": ...}``) or, for a single secret, the bare text (read as
``{"token": text}``). Nothing here logs or echoes a secret's value.

References are confined: a ``file:`` must lie in one of ``exchange_credentials_dirs``
(default ``<home>/secrets``) and an ``env:`` variable must be named ``AMPARO_SECRET_*``.
Otherwise a curator (who manages collaborations over the API, and may point one at a URL of
their choosing) could have the server read its own evidence key, feed signing key, database
password or cloud credentials and send them to that URL as "credentials".
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from amparo.config import Settings
from amparo.errors import CredentialsError, InputError
from amparo.exchanges.model import Credentials

ENV_PREFIX = "AMPARO_SECRET_"
_HINT = (
    "use file:/path/to/secret (a JSON object or one token, in a directory of "
    f"exchange_credentials_dirs) or env:{ENV_PREFIX}NAME"
)


def credentials_dirs(settings: Settings) -> list[Path]:
    """The directories ``file:`` references may name, resolved."""
    raw = [d.strip() for d in settings.exchange_credentials_dirs.split(",") if d.strip()]
    dirs = [Path(d).expanduser() for d in raw] or [settings.home / "secrets"]
    return [d.resolve() for d in dirs]


def check_reference(ref: str | None, settings: Settings) -> str | None:
    """Validate a reference (what ``add`` stores): its syntax and where it may point. The
    secret itself may be provisioned later, so the file or variable need not exist yet."""
    if ref is None or ref == "":
        return None
    kind, sep, where = ref.partition(":")
    if not sep or kind not in ("file", "env") or not where.strip():
        # Not quoted: a mistyped reference may be the secret itself.
        raise InputError("invalid credentials reference (not file:... or env:...)", hint=_HINT)
    if kind == "env":
        if not where.replace("_", "").isalnum():
            raise InputError(f"invalid environment variable name in {ref!r}", hint=_HINT)
        if not where.startswith(ENV_PREFIX) or where == ENV_PREFIX:
            raise InputError(
                f"credentials may come only from variables named {ENV_PREFIX}*, not {where}",
                hint=f"export the secret as {ENV_PREFIX}{where} and use env:{ENV_PREFIX}{where}",
            )
        return ref
    path = _confined(Path(where).expanduser(), settings)
    return f"file:{path}"


def _confined(path: Path, settings: Settings) -> Path:
    if not path.is_absolute():
        raise InputError("a credentials file must be named by its absolute path", hint=_HINT)
    resolved = path.resolve()  # symbolic links and .. cannot lead out
    allowed = credentials_dirs(settings)
    if not any(resolved.is_relative_to(d) for d in allowed):
        raise InputError(
            f"credentials file {str(path)!r} is outside the credentials directories "
            f"({', '.join(str(d) for d in allowed)})",
            hint="put it there (readable only by Amparo's user), or add its directory to "
            "the exchange_credentials_dirs setting",
        )
    return resolved


def load_credentials(
    ref: str | None, settings: Settings, *, environ: Mapping[str, str] | None = None
) -> Credentials | None:
    """The credentials ``ref`` points at (None when there is no reference). The reference
    is checked again: the directories allowed may have changed since it was stored."""
    ref = check_reference(ref, settings)
    if ref is None:
        return None
    kind, _, where = ref.partition(":")
    if kind == "file":
        path = Path(where)
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
