"""The file and url exchanges: full fetches of a hash list, unchanged content, bad lines."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from amparo.config import Settings, load_settings
from amparo.errors import ExchangeError, InputError, UrlRefusedError
from amparo.exchanges.base import Exchange, ExchangeContext, exchange_type
from amparo.exchanges.file import FileCheckpoint, UrlCheckpoint
from amparo.exchanges.http import RetryingClient
from amparo.exchanges.model import Batch, Checkpoint
from fakes.listserver import ListServer


def md5() -> str:
    return secrets.token_hex(16)


@pytest.fixture
def amparo_settings(tmp_path: Path) -> Settings:
    return load_settings(
        env={},
        overrides={
            "home": tmp_path / "home",
            "url_allowlist": "127.0.0.1",
            "exchange_batch_size": 3,
            "exchange_list_dirs": str(tmp_path),  # the tests' lists live there
        },
    )


@pytest.fixture
def server() -> Iterator[ListServer]:
    with ListServer() as s:
        yield s


def make(kind: str, settings: Settings, **options: object) -> Exchange:
    http = RetryingClient(sleep=lambda s: None, attempts=3)
    return exchange_type(kind)(dict(options), None, ExchangeContext(settings=settings, http=http))


def fetch(exchange: Exchange, checkpoint: Checkpoint | None = None) -> list[Batch]:
    return list(exchange.fetch(checkpoint))


def listed(batches: list[Batch]) -> dict[str, str]:
    return {u.record_id: u.signal or "" for b in batches for u in b.updates}


def test_file_full_fetch_in_batches(tmp_path: Path, amparo_settings: Settings) -> None:
    hashes = [md5() for _ in range(7)]
    path = tmp_path / "list.txt"
    path.write_text("# a comment\n" + "\n".join(hashes) + "\n")
    batches = fetch(make("file", amparo_settings, path=str(path)))
    assert listed(batches) == {f"md5:{h}": h for h in hashes}
    assert len(batches) == 3 and all(b.full for b in batches)
    assert [b.complete for b in batches] == [False, False, True]
    # only the last batch claims the new content
    assert batches[0].checkpoint is None
    last = batches[-1].checkpoint
    assert isinstance(last, FileCheckpoint) and last.sha256 and last.size == path.stat().st_size


def test_file_unchanged_then_touched_then_changed(
    tmp_path: Path, amparo_settings: Settings
) -> None:
    a, b = md5(), md5()
    path = tmp_path / "list.txt"
    path.write_text(f"{a}\n{b}\n")
    exchange = make("file", amparo_settings, path=str(path))
    first = fetch(exchange)
    checkpoint = exchange.load_checkpoint(first[-1].checkpoint.to_json())  # type: ignore[union-attr]

    again = fetch(exchange, checkpoint)
    assert len(again) == 1 and again[0].unchanged and not again[0].updates

    os.utime(path, ns=(1, 1))  # touched, same content: still unchanged (digest)
    touched = fetch(exchange, checkpoint)
    assert len(touched) == 1 and touched[0].unchanged
    assert touched[0].checkpoint.mtime_ns == 1  # type: ignore[union-attr]

    path.write_text(f"{a}\n")  # b removed: a full fetch without it
    changed = fetch(exchange, touched[0].checkpoint)
    assert listed(changed) == {f"md5:{a}": a}
    assert changed[-1].complete and changed[-1].full


def test_file_bad_lines_are_malformed_while_valid_lines_land(
    tmp_path: Path, amparo_settings: Settings
) -> None:
    good = md5()
    path = tmp_path / "list.te"
    path.write_text(f"md5 {good}\nmd5 nothex\nfoo {md5()}\n")
    batches = fetch(make("file", amparo_settings, path=str(path)))
    assert listed(batches) == {f"md5:{good}": good}
    bad = [m for b in batches for m in b.malformed]
    assert [m.record_id for m in bad] == ["line:2", "line:3"]
    assert "list.te: 3:" in bad[1].reason and "unknown signal type" in bad[1].reason


def test_file_csv_with_source_ids_and_disabled_rows(
    tmp_path: Path, amparo_settings: Settings
) -> None:
    a, b, c = md5(), md5(), secrets.token_hex(32)
    path = tmp_path / "list.csv"
    path.write_text(
        "signal_type,signal,category,tags,source_id,enabled\n"
        f"md5,{a},csam,x|y,case-1,true\n"
        f"md5,{b},csam,,case-2,false\n"
        f"pdq,{c},,,,\n"
    )
    batches = fetch(make("file", amparo_settings, path=str(path)))
    updates = {u.record_id: u for batch in batches for u in batch.updates}
    assert set(updates) == {f"case-1:md5:{a}", f"pdq:{c}"}  # the disabled row is not listed
    assert updates[f"case-1:md5:{a}"].tags == ("x", "y")
    assert updates[f"case-1:md5:{a}"].source_ids == ("case-1",)


def test_file_vics_one_media_many_hashes(tmp_path: Path, amparo_settings: Settings) -> None:
    a, p = md5(), secrets.token_hex(32)
    doc = {"value": [{"MediaID": 7, "Category": 1, "MD5": a, "PDQ": p}]}
    path = tmp_path / "hashes.json"
    path.write_text(json.dumps(doc))
    batches = fetch(make("file", amparo_settings, path=str(path)))
    assert set(listed(batches)) == {f"7:md5:{a}", f"7:pdq:{p}"}


def test_file_with_nothing_valid_is_refused(tmp_path: Path, amparo_settings: Settings) -> None:
    path = tmp_path / "list.txt"
    path.write_text("garbage\nmore garbage\n")
    with pytest.raises(ExchangeError, match="no valid entry"):
        fetch(make("file", amparo_settings, path=str(path)))
    path.write_text("")
    with pytest.raises(ExchangeError, match="allow_empty"):
        fetch(make("file", amparo_settings, path=str(path)))
    empty = fetch(make("file", amparo_settings, path=str(path), allow_empty=True))
    assert len(empty) == 1 and empty[0].complete and not empty[0].updates


def test_file_settings_and_errors(tmp_path: Path, amparo_settings: Settings) -> None:
    with pytest.raises(InputError, match="path"):
        make("file", amparo_settings)
    with pytest.raises(InputError, match="format"):
        make("file", amparo_settings, path="x", format="xml")
    with pytest.raises(InputError, match="does not know"):
        make("file", amparo_settings, path="x", url="y")
    with pytest.raises(ExchangeError, match="cannot read the list file"):
        fetch(make("file", amparo_settings, path=str(tmp_path / "missing.txt")))
    path = tmp_path / "list.csv"
    path.write_text("no header here\n")
    with pytest.raises(ExchangeError, match=r"cannot read list\.csv as csv"):
        fetch(make("file", amparo_settings, path=str(path), format="csv"))


def test_file_text_64_hex_needs_signal_type(tmp_path: Path, amparo_settings: Settings) -> None:
    p = secrets.token_hex(32)
    path = tmp_path / "pdq.txt"
    path.write_text(p + "\n")
    batches = fetch(make("file", amparo_settings, path=str(path), signal_type="pdq"))
    assert listed(batches) == {f"pdq:{p}": p}


def test_url_etag_304_and_digest(server: ListServer, amparo_settings: Settings) -> None:
    a, b = md5(), md5()
    server.body = f"{a}\n{b}\n".encode()
    exchange = make("url", amparo_settings, url=server.url + "/list.txt")
    first = fetch(exchange)
    assert set(listed(first)) == {f"md5:{a}", f"md5:{b}"}
    checkpoint = first[-1].checkpoint
    assert isinstance(checkpoint, UrlCheckpoint) and checkpoint.etag == server.etag
    assert checkpoint.last_modified == server.modified

    again = fetch(exchange, exchange.load_checkpoint(checkpoint.to_json()))
    assert len(again) == 1 and again[0].unchanged
    headers = server.requests[-1][1]
    assert headers["if-none-match"] == server.etag
    assert headers["if-modified-since"] == server.modified

    server.body = f"{a}\n".encode()  # b withdrawn
    changed = fetch(exchange, again[0].checkpoint)
    assert listed(changed) == {f"md5:{a}": a} and changed[-1].complete

    server.etags = False  # no validators: the body's digest says unchanged
    same = fetch(exchange, changed[-1].checkpoint)
    assert len(same) == 1 and same[0].unchanged


def test_url_retries_and_format_by_extension(server: ListServer, amparo_settings: Settings) -> None:
    a = md5()
    server.body = f"signal\n{a}\n".encode()  # a one-column csv: sniffing alone says text
    server.fail_next(503, 429)
    batches = fetch(make("url", amparo_settings, url=server.url + "/list.csv"))
    assert listed(batches) == {f"md5:{a}": a}
    server.fail_next(404)
    with pytest.raises(ExchangeError, match="404"):
        fetch(make("url", amparo_settings, url=server.url + "/list.csv"))


def test_url_policy(tmp_path: Path) -> None:
    plain = load_settings(env={}, overrides={"home": tmp_path / "home"})
    with pytest.raises(UrlRefusedError, match="https"):
        make("url", plain, url="http://lists.example.org/a.txt")
    with pytest.raises(UrlRefusedError, match="only http and https"):
        make("url", plain, url="ftp://lists.example.org/a.txt")
    # https to loopback passes the scheme rule but not the address rule
    exchange = make("url", plain, url="https://127.0.0.1:1/a.txt")
    with pytest.raises(UrlRefusedError, match="not a public address"):
        fetch(exchange)


def test_file_lists_are_confined_and_regular(amparo_settings: Settings, tmp_path: Path) -> None:
    """A curator picks the path over the API: the server must not read its own keys or
    configuration back through the quarantine, nor hang on a device or a FIFO."""
    from amparo.exchanges.checking import checked_settings
    from amparo.exchanges.file import FileExchange

    for path in ("/etc/passwd", f"{tmp_path}/../../etc/passwd", "relative.csv", "a\x00b"):
        with pytest.raises(InputError) as refused:
            checked_settings(FileExchange, {"path": path}, amparo_settings)
        assert refused.value.hint or "NUL" in str(refused.value)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    exchange = FileExchange(
        {"path": str(fifo)},
        None,
        ExchangeContext(settings=amparo_settings, http=RetryingClient(sleep=lambda s: None)),
    )
    with pytest.raises(ExchangeError, match="not a regular file"):
        list(exchange.fetch(None))
    with pytest.raises(InputError, match="invalid settings"):
        checked_settings(FileExchange, {"path": str(tmp_path / "x"), "category_map": [1]},
                         amparo_settings)  # fmt: skip
