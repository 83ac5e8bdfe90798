"""One exception tree for Amparo. Every error says what went wrong and how to fix it.

AmparoError                 base; ``exit_code`` for the CLI, ``http_status`` for the API
├── ConfigError             a setting is missing or malformed
├── InputError              bad input from the user (generic)
│   ├── InvalidSignalError  a hash whose text form is not valid for its signal type
│   ├── UnknownSignalTypeError
│   ├── FormatError         a hash-list file that cannot be read (carries line numbers)
│   ├── MediaError          media that cannot be decoded safely
│   │   ├── UnsupportedMediaError   not a format Amparo decodes
│   │   ├── CorruptMediaError       truncated or damaged
│   │   └── MediaTooLargeError      decompression bomb, absurd dimensions, over a size limit
│   ├── PackageRefusedError a report package failed its recipient's checks (``problems``)
│   ├── FetchError          a url= that could not be fetched (422)
│   └── UrlRefusedError     a URL Amparo will not fetch (scheme, credentials, address)
├── PayloadTooLargeError    a request body over the API's limit (413)
├── AuthenticationError     no API key, or an unknown or revoked one (401)
├── RateLimitedError        over a request budget (429; ``retry_after`` seconds)
│   ├── ProbeSuspectedError a key seems to be reconstructing a bank's hashes
│   └── FetchBusyError      too many URL fetches in flight
├── NotFoundError           a bank, entry or other named thing does not exist
│   └── BankNotFoundError
├── ConflictError           the thing already exists / the change conflicts with state
├── PermissionDeniedError   the caller's key lacks the scope
│   └── ExposureLimitError  a reviewer's daily reveals are used up (429)
├── SubmissionError         a hotline refused a report or could not be reached (502)
├── AddressInUseError       ``amparo serve`` cannot listen on its address
├── ExchangeError           a hash-sharing source or peer failed (502): unreachable, refused,
│   │                       answered something unreadable
│   ├── CredentialsError    a collaboration's credentials are missing or were refused (401)
│   └── FeedVerificationError  a federation page failed its signature, nonce or cursor
│       │                   check (nothing of it is applied)
│       └── OpinionVerificationError  a partner's opinion does not verify with the key
│                           pinned at grant time (400; nothing stored)
├── StorageError            the database or data directory cannot be used
│   ├── IndexCorruptError   an on-disk index segment fails its checksum or header check
│   ├── DatabaseSlowError   the database did not answer a lookup in time (503)
│   │   └── DatabaseNeededError  a memory-only lookup (on an event loop) needs the database
│   ├── BlobNotFoundError   a blob backend holds no blob under a key (the evidence store
│   │                       turns it into BlobMissingError, naming the item)
│   └── EvidenceIntegrityError  a preserved evidence item is damaged, altered or missing
│       └── BlobMissingError    its encrypted blob is not in the blob store
└── InternalError           a caller broke an internal function's precondition: a bug in
                            Amparo, never a user's input (answered like any bug: 500)

Every class lives here, so ``grep -n "class .*Error" src/amparo`` finds this file only; code
lower down (``index``, ``signals``, ``media``) may import it, since it imports nothing.
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


class PackageRefusedError(InputError):
    """A report package failed verification and nothing was written; ``problems`` lists
    everything found (each names the member or custody line)."""

    code = "package_refused"

    def __init__(
        self, message: str, *, hint: str | None = None, problems: list[str] | None = None
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


class FetchError(InputError):
    """The URL could not be fetched (refused status, timeout, connection failure);
    ``status`` is the HTTP status the server refused it with, if that was the reason."""

    code = "fetch_failed"
    http_status = 422

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class UrlRefusedError(InputError):
    """The URL is not one Amparo will fetch (scheme, credentials, address)."""

    code = "url_refused"
    http_status = 400


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


class ExposureLimitError(PermissionDeniedError):
    """The reviewer has revealed as many items today as ``review_daily_limit`` allows."""

    code = "daily_limit_reached"
    http_status = 429


class AuthenticationError(AmparoError):
    """No key, or a key that is unknown or revoked."""

    code = "unauthenticated"
    http_status = 401


class RateLimitedError(AmparoError):
    """The key has used up its request budget; ``retry_after`` says when to try again."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: float, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class ProbeSuspectedError(RateLimitedError):
    """A key sent many different queries a few bits apart that matched: a hash is being
    reconstructed. Its lookups are refused until the cool-down ends."""

    code = "probe_suspected"


class FetchBusyError(RateLimitedError):
    """Too many URL fetches are in flight (for this key, or in this process): 429."""

    code = "too_many_fetches"


class PayloadTooLargeError(AmparoError):
    """A request body over the API's JSON or upload limit."""

    code = "payload_too_large"
    http_status = 413


class SubmissionError(AmparoError):
    """The hotline refused a request or could not be reached; the submission can resume."""

    code = "submission_failed"
    http_status = 502


class AddressInUseError(AmparoError):
    """``amparo serve`` cannot bind its host and port (busy, or not this machine's)."""

    code = "address_in_use"


class StorageError(AmparoError):
    code = "storage_error"
    http_status = 503


class IndexCorruptError(StorageError):
    code = "index_corrupt"


class DatabaseSlowError(StorageError):
    """The database did not answer within ``api_database_timeout_seconds``: the lookup was
    given up (a 503 the caller may retry), rather than holding the request open."""

    code = "database_slow"
    http_status = 503


class DatabaseNeededError(DatabaseSlowError):
    """A lookup asked to answer from memory only (on a server's event loop) needs the
    database; the caller runs it again in a worker thread."""

    code = "database_needed"


class BlobNotFoundError(StorageError):
    """The blob backend holds no blob under that key. Raised by backends and translated by
    the evidence store into :class:`BlobMissingError`, which names the item."""

    code = "blob_not_found"


class EvidenceIntegrityError(StorageError):
    """A preserved item failed its integrity check (authentication tag, SHA-256, size) or its
    blob is missing. The message names the item; nothing of its content."""

    code = "evidence_integrity"
    http_status = 500


class BlobMissingError(EvidenceIntegrityError):
    """An item's encrypted blob is not in the blob store."""


class ExchangeError(AmparoError):
    """A hash-sharing source or peer failed: unreachable, refused the request, or answered
    something that cannot be read. The fetch stops at the last committed batch; nothing
    is lost and the next fetch continues from there."""

    code = "exchange_failed"
    http_status = 502


class CredentialsError(ExchangeError):
    """A collaboration's credentials are missing, unreadable, or refused by the source."""

    code = "bad_credentials"
    http_status = 401


class FeedVerificationError(ExchangeError):
    """A federation page failed verification: a signature by another key, a byte altered in
    transit, a replayed page (wrong nonce or cursor). Nothing of the page is applied."""

    code = "feed_verification_failed"
    http_status = 502


class OpinionVerificationError(FeedVerificationError):
    """A partner's opinion does not verify with the public key its grant pinned (another
    key, an altered byte): the publisher stores nothing. The sender's fault, hence 400."""

    code = "opinion_verification_failed"
    http_status = 400


class InternalError(AmparoError):
    """A caller broke a precondition of an internal function (an array of the wrong shape, a
    signal type registered twice): a bug in Amparo that no user input reaches, checked so
    that it fails loudly rather than returning wrong answers. Unlike ``assert`` it survives
    ``python -O``. The API answers it as any bug (500, ``internal_error``, details logged)."""

    code = "internal_error"
    http_status = 500
    exit_code = 70  # EX_SOFTWARE: an internal error, not the user's
