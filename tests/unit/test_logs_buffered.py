"""The service's log handler writes lines in batches, in order, and loses none at shutdown."""

from __future__ import annotations

import io
import json
import logging
import threading
import uuid
from collections.abc import Iterator

import pytest

from amparo.api.logs import BufferedStreamHandler, JsonFormatter, log_config, request_id_from


class Stream(io.StringIO):
    """A stream that counts its writes and says when one happened."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.wrote = threading.Event()

    def write(self, text: str) -> int:
        self.writes += 1
        self.wrote.set()
        return super().write(text)


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger(f"amparo.test.{uuid.uuid4().hex}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def attach(logger: logging.Logger, stream: Stream, **options: float) -> BufferedStreamHandler:
    handler = BufferedStreamHandler(stream, **options)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    return handler


def messages(stream: Stream) -> list[str]:
    return [json.loads(line)["message"] for line in stream.getvalue().splitlines()]


def test_info_lines_wait_for_a_flush_then_go_out_in_one_write(logger: logging.Logger) -> None:
    stream = Stream()
    handler = attach(logger, stream, interval=3600)
    for i in range(5):
        logger.info("line %d", i, extra={"route": "/m/raw_lookup"})
    assert stream.getvalue() == ""
    handler.flush()
    assert messages(stream) == [f"line {i}" for i in range(5)]
    assert stream.writes == 1
    assert json.loads(stream.getvalue().splitlines()[0])["route"] == "/m/raw_lookup"


def test_a_warning_goes_out_at_once_after_the_lines_before_it(logger: logging.Logger) -> None:
    stream = Stream()
    attach(logger, stream, interval=3600)
    logger.info("first")
    logger.warning("trouble")
    assert messages(stream) == ["first", "trouble"]


def test_closing_writes_what_waits(logger: logging.Logger) -> None:
    stream = Stream()
    handler = attach(logger, stream, interval=3600)
    logger.info("last words")
    handler.close()
    assert messages(stream) == ["last words"]


def test_a_full_buffer_is_written_without_waiting(logger: logging.Logger) -> None:
    stream = Stream()
    attach(logger, stream, interval=3600, capacity=200)
    for i in range(10):
        logger.info("line %d", i)
    assert stream.writes >= 1 and messages(stream)[:2] == ["line 0", "line 1"]


def test_waiting_lines_are_written_by_the_handler_itself(logger: logging.Logger) -> None:
    stream = Stream()
    attach(logger, stream, interval=0.01)
    logger.info("no one flushes this")
    assert stream.wrote.wait(timeout=60)
    assert messages(stream) == ["no one flushes this"]


def test_the_serve_config_uses_the_buffered_handler() -> None:
    handler = log_config("INFO")["handlers"]["default"]
    assert handler["class"] == "amparo.api.logs.BufferedStreamHandler"
    assert handler["formatter"] == "json"


def test_made_request_ids_are_uuid4_hex() -> None:
    for _ in range(100):
        made = request_id_from(None)
        parsed = uuid.UUID(hex=made)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and parsed.hex == made
    assert request_id_from("abc-1") == "abc-1"
    assert len(request_id_from("bad id with spaces")) == 32
