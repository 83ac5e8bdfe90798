"""One exception tree for Amparo. Every error says what went wrong and how to fix it.

AmparoError                 base; ``exit_code`` for the CLI, ``http_status`` for the API
├── ConfigError             a setting is missing or malformed
├── InputError              bad input from the user (generic)
│   ├── InvalidSignalError  a hash whose text form is not valid for its signal type
│   ├── UnknownSignalTypeError
│   ├── FormatError         a hash-list file that cannot be read (carries line numbers)
│   └── MediaError          media that cannot be decoded safely
│       ├── UnsupportedMediaError   not a format Amparo decodes
│       ├── CorruptMediaError       truncated or damaged
│       └── MediaTooLargeError      decompression bomb, absurd dimensions, over a size limit
├── NotFoundError           a bank, entry or other named thing does not exist
│   └── BankNotFoundError
├── ConflictError           the thing already exists / the change conflicts with state
├── PermissionDeniedError   the caller's key lacks the scope
└── StorageError            the database or data directory cannot be used
    ├── IndexCorruptError   an on-disk index segment fails its checksum or header check
    └── EvidenceIntegrityError  a preserved evidence item is damaged, altered or missing
"""

from __future__ import annotations


class AmparoError(Exception):
    """Base of every error Amparo raises on purpose.

    ``hint`` tells the user how to fix the problem; the CLI prints it on its own line.
    """

    exit_code: int = 2
    http_status: int = 400
    code: str = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(AmparoError):
    code = "config_error"
    http_status = 500


class InputError(AmparoError):
    code = "invalid_input"
    http_status = 400


class InvalidSignalError(InputError):
    code = "invalid_signal"


class UnknownSignalTypeError(InputError):
    code = "unknown_signal_type"


class FormatError(InputError):
    """A hash-list file could not be read. ``problems`` lists ``(line_number, message)``."""

    code = "format_error"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        problems: list[tuple[int, str]] | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems or []


class MediaError(InputError):
    code = "media_error"


class UnsupportedMediaError(MediaError):
    code = "unsupported_media"
    http_status = 415


class CorruptMediaError(MediaError):
    code = "corrupt_media"


class MediaTooLargeError(MediaError):
    code = "media_too_large"
    http_status = 413


class NotFoundError(AmparoError):
    code = "not_found"
    http_status = 404


class BankNotFoundError(NotFoundError):
    code = "bank_not_found"


class ConflictError(AmparoError):
    code = "conflict"
    http_status = 409


class PermissionDeniedError(AmparoError):
    code = "permission_denied"
    http_status = 403


class StorageError(AmparoError):
    code = "storage_error"
    http_status = 503


class IndexCorruptError(StorageError):
    code = "index_corrupt"


class EvidenceIntegrityError(StorageError):
    """A preserved item failed its integrity check (authentication tag, SHA-256, size) or its
    blob is missing. The message names the item; nothing of its content."""

    code = "evidence_integrity"
    http_status = 500
