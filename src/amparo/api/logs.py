"""Structured JSON logs, each line carrying the id of the request it belongs to."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("amparo_request_id", default=None)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def request_id_from(header: str | None) -> str:
    """Honour a caller's X-Request-ID when it is sane; otherwise make one."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    # uuid.uuid4().hex, without building a UUID object (a measurable share of a fast lookup).
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            data["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes its lines in batches rather than one write a line (a
    service logs a line a request): what is waiting goes out at most ``interval`` seconds
    after it was logged, at once with a WARNING or worse (so lines keep their order and
    problems show promptly), past ``capacity`` characters, and when the handler is flushed
    or closed (the service's shutdown; ``logging.shutdown`` at exit)."""

    def __init__(
        self, stream: Any = None, interval: float = 1.0, capacity: int = 64 * 1024
    ) -> None:
        super().__init__(stream)
        self.interval = interval
        self.capacity = capacity
        self._pending: list[str] = []
        self._size = 0
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._pending.append(line)
        self._size += len(line)
        if record.levelno >= logging.WARNING or self._size >= self.capacity:
            self.flush()
        elif len(self._pending) == 1 and not (self._flusher and self._flusher.is_alive()):
            # Started on first use (and again in a forked child, which has no thread).
            self._flusher = threading.Thread(
                target=self._flush_every_interval, name="amparo-log-flush", daemon=True
            )
            self._flusher.start()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._pending:
                lines, self._pending, self._size = self._pending, [], 0
                self.stream.write("".join(lines))
            super().flush()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError, ValueError):  # the stream is gone already
            self.flush()
        super().close()

    def _flush_every_interval(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(OSError, ValueError):
                self.flush()


def flush_logs() -> None:
    """Write out what the root and access loggers' handlers hold (a service stopping)."""
    for name in (None, "amparo.access"):
        for handler in logging.getLogger(name).handlers:
            with contextlib.suppress(OSError, ValueError):
                handler.flush()


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``amparo serve`` (uvicorn's loggers included).

    The access log (``amparo.access``: one line a request) is at INFO whatever ``level`` is, so
    an operator always has it; ``level`` governs everything else. Lines are written in
    batches (:class:`BufferedStreamHandler`): at most a second late, a WARNING or worse at once.
    """
    access = "DEBUG" if level.upper() == "DEBUG" else "INFO"
    handler = {
        "class": "amparo.api.logs.BufferedStreamHandler",
        "formatter": "json",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "amparo.api.logs.JsonFormatter"}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"level": level.upper()},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"level": "WARNING", "propagate": False},
            "amparo.access": {"level": access},
        },
    }
