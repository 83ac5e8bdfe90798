"""Log records without secrets in URLs: credentials, query strings and fragments removed.

httpx logs ``HTTP Request: GET <url> "HTTP/1.1 200 OK"`` at INFO for every request Amparo
makes (URL fetches, webhook deliveries); such URLs often carry tokens in their query string.
:func:`redact_http_client_logs` puts :class:`RedactUrls` on the HTTP client's loggers.
"""

from __future__ import annotations

import logging
import re

_URL = re.compile(
    r"\b(https?://)(?:[^/\s@\"'<>]*@)?([^\s?#\"'<>]*)(\?[^\s#\"'<>]*)?(#[^\s\"'<>]*)?"
)


def redact_url(text: str) -> str:
    """``text`` with credentials, query strings and fragments of the URLs in it removed."""

    def one(m: re.Match[str]) -> str:
        return m.group(1) + m.group(2) + ("?[redacted]" if m.group(3) or m.group(4) else "")

    return _URL.sub(one, text)


class RedactUrls(logging.Filter):
    """Rewrites a log record's message with :func:`redact_url` (tokens stay out of logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to report
            return True
        redacted = redact_url(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


# httpx logs "HTTP Request: GET <url> ..." at INFO on its own logger; httpcore logs connection
# events on child loggers (filters are not inherited, so each is named).
HTTP_CLIENT_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
)


def redact_http_client_logs() -> None:
    """Install :class:`RedactUrls` on the HTTP client's loggers (once)."""
    for name in HTTP_CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactUrls) for f in logger.filters):
            logger.addFilter(RedactUrls())


redact_http_client_logs()
