"""Bucket scanning within bounds, found in a security review: an archive object too large
for the worker's temporary disk is digested, not opened; the action rules' copy of an object
is bounded; object keys with ``!``, ``%`` or control characters are reported unambiguously
(and resume by those names); an endpoint's user and password never reach a message.

Synthetic images only (made by test_scan_s3's helpers), on moto's S3 server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_scan_s3 import KNOWN, OTHER, cli, hash_object, scan, zip_bytes

from amparo import Amparo, BankInfo, load_settings
from amparo.actions import Rule
from amparo.errors import ConfigError, StorageError
from amparo.scan import HashLimits, HashOutcome, HashTask, Problem
from amparo.scan.model import ObjectRef, S3Options
from amparo.scan.s3 import (
    check_access,
    forget_clients,
    object_media,
    object_path,
    safe_endpoint,
    scrub,
)
from s3_support import MotoS3, free_port

ARCHIVE = zip_bytes({"k.jpg": KNOWN, "u.jpg": OTHER})


@pytest.fixture(scope="module")
def store() -> Iterator[MotoS3]:
    with MotoS3() as moto:
        yield moto


@pytest.fixture
def s3(store: MotoS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    store.use(monkeypatch)
    forget_clients()
    yield store
    forget_clients()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        amparo.banks.create(BankInfo(name="known"))
        amparo.banks.add_media("known", KNOWN, category="test-category")
    return home


def open_amparo(home: Path, s3: MotoS3, **overrides: Any) -> Amparo:
    settings = load_settings(
        env={}, overrides={"home": home, "s3_endpoint": s3.endpoint, **overrides}
    )
    return Amparo(settings)


def limits_for(s3: MotoS3, **changes: Any) -> HashLimits:
    limits = HashLimits(max_pixels=50_000_000, max_file_bytes=50 * 1024**2)
    return replace(limits, s3=S3Options(endpoint_url=s3.endpoint), **changes)


def test_an_archive_over_the_spool_limit_is_digested_not_opened(s3: MotoS3) -> None:
    bucket = s3.bucket()
    etag = s3.put(bucket, "a.zip", ARCHIVE)
    task = HashTask(f"s3://{bucket}/a.zip", len(ARCHIVE), 0, obj=ObjectRef(bucket, "a.zip", etag))

    (outcome,) = hash_object(task, limits_for(s3, max_spool_bytes=len(ARCHIVE) - 1))
    assert isinstance(outcome, HashOutcome) and outcome.status == "skipped"
    assert outcome.code == "too_large" and outcome.media_type == "zip"
    assert outcome.hashes is not None
    assert outcome.hashes.sha256 == hashlib.sha256(ARCHIVE).hexdigest()
    assert "digested, not opened" in (outcome.message or "")
    assert "s3_max_spool_bytes" in (outcome.message or "")

    opened = hash_object(task, limits_for(s3, max_spool_bytes=len(ARCHIVE)))
    assert [x.path for x in opened] == [task.path, task.path + "!k.jpg", task.path + "!u.jpg"]
    assert all(isinstance(x, HashOutcome) and x.status == "ok" for x in opened)

    # A stream longer than declared never spools past the limit either.
    liar = replace(task, size=10)
    (short,) = hash_object(liar, limits_for(s3, max_spool_bytes=100))
    assert isinstance(short, HashOutcome) and short.status == "error"
    assert "temporary disk" in (short.message or "")


def test_a_scan_reports_an_archive_over_s3_max_spool_bytes(
    home: Path, s3: MotoS3, tmp_path: Path
) -> None:
    bucket = s3.bucket()
    s3.put(bucket, "t/a.zip", ARCHIVE)
    s3.put(bucket, "t/k.jpg", KNOWN)
    with open_amparo(home, s3, s3_max_spool_bytes=len(ARCHIVE) - 1) as amparo:
        done = scan(amparo, [f"s3://{bucket}/t"], tmp_path)
    skipped = {(i.path, i.code) for i in done.result.skipped}
    assert (f"s3://{bucket}/t/a.zip", "too_large") in skipped
    assert {x.path for x in done.records} == {f"s3://{bucket}/t/a.zip", f"s3://{bucket}/t/k.jpg"}
    assert done.result.matched_files == 1


def test_the_rules_copy_is_bounded(s3: MotoS3) -> None:
    bucket = s3.bucket()
    etag = s3.put(bucket, "k.jpg", KNOWN)
    zip_etag = s3.put(bucket, "a.zip", ARCHIVE)
    options = S3Options(endpoint_url=s3.endpoint)
    obj, archive = ObjectRef(bucket, "k.jpg", etag), ObjectRef(bucket, "a.zip", zip_etag)

    assert object_media(obj, None, options, max_file_bytes=len(KNOWN))() == KNOWN
    with pytest.raises(StorageError, match="over max_file_bytes") as over:
        object_media(obj, None, options, max_file_bytes=len(KNOWN) - 1)()
    assert "raise max_file_bytes" in (over.value.hint or "")

    assert object_media(archive, "k.jpg", options, max_spool_bytes=len(ARCHIVE))() == KNOWN
    with pytest.raises(StorageError, match="over s3_max_spool_bytes"):
        object_media(archive, "k.jpg", options, max_spool_bytes=len(ARCHIVE) - 1)()


def test_a_matched_object_over_max_file_bytes_is_not_preserved(
    home: Path, s3: MotoS3, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = s3.bucket()
    s3.put(bucket, "t/k.jpg", KNOWN)
    with open_amparo(home, s3, max_file_bytes=len(KNOWN) - 1) as amparo:
        amparo.actions.add_rule(
            Rule.from_json({"name": "keep", "actions": [{"type": "quarantine"}]}), actor="t"
        )
        done = scan(amparo, [f"s3://{bucket}/t"], tmp_path)
        assert done.result.matched_files == 1  # matched by its digests (too_large)
        (taken,) = amparo.actions.log()
        assert taken.outcome != "done" and "evidence_id" not in taken.detail
    assert "over max_file_bytes" in caplog.text


def test_keys_that_look_like_members_are_reported_unambiguously(
    home: Path, s3: MotoS3, tmp_path: Path
) -> None:
    bucket = s3.bucket()
    keys = {"t/a.zip": ARCHIVE, "t/a.zip!k.jpg": KNOWN, "t/100%.jpg": KNOWN, "t/x\ty.jpg": KNOWN}
    for key, data in keys.items():
        s3.put(bucket, key, data)
    root = f"s3://{bucket}/t/"
    assert object_path(bucket, "t/a.zip!k.jpg") == root + "a.zip%21k.jpg"
    assert object_path(bucket, "t/x\ty\x7f%") == root + "x%09y%7F%25"
    journal = tmp_path / "scan.journal"
    with open_amparo(home, s3) as amparo:
        amparo.actions.add_rule(
            Rule.from_json({"name": "keep", "actions": [{"type": "quarantine"}]}), actor="t"
        )
        first = scan(amparo, [root], tmp_path, journal=journal)
        expected = {
            root + "a.zip",
            root + "a.zip!k.jpg",  # the member
            root + "a.zip!u.jpg",
            root + "a.zip%21k.jpg",  # the object
            root + "100%25.jpg",
            root + "x%09y.jpg",
        }
        assert {x.path for x in first.records} == expected
        assert first.result.matched_files == 4
        kept = {r.source["path"]: r.detail.get("evidence_id") for r in amparo.actions.log()}
        assert set(kept) == expected - {root + "a.zip", root + "a.zip!u.jpg"}
        for evidence_id in kept.values():  # members and objects alike read again correctly
            assert evidence_id is not None
            assert amparo.evidence.read(evidence_id, actor="t") == KNOWN

        again = scan(amparo, [root], tmp_path, journal=journal, resume=True)
    paths = [x.path for x in again.records]
    assert len(paths) == len(set(paths)) and set(paths) == expected
    assert again.result.resumed == len(expected)  # found in the journal by these names


def test_an_endpoints_password_never_reaches_a_message(
    s3: MotoS3, home: Path, tmp_path: Path
) -> None:
    port = free_port()
    secret = f"http://u:SECRETPW@127.0.0.1:{port}/?X-Token=QSECRET"
    assert safe_endpoint(secret) == f"http://127.0.0.1:{port}/"
    assert safe_endpoint(None) == "AWS S3"
    assert scrub(f'Could not connect to "{secret}"') == (
        f'Could not connect to "http://127.0.0.1:{port}/?X-Token=QSECRET"'
    )
    with pytest.raises(ConfigError) as refused:
        check_access(["s3://b"], S3Options(endpoint_url=secret))
    text = f"{refused.value.message} {refused.value.hint}"
    assert f"127.0.0.1:{port}" in text and "SECRETPW" not in text and "QSECRET" not in text

    task = HashTask("s3://b/k.jpg", 10, 0, obj=ObjectRef("b", "k.jpg", "e"))
    (unreachable,) = hash_object(task, replace(limits_for(s3), s3=S3Options(endpoint_url=secret)))
    assert isinstance(unreachable, HashOutcome | Problem)
    assert "SECRETPW" not in (unreachable.message or "")

    with pytest.raises(StorageError) as unread:
        object_media(ObjectRef("b", "k.jpg", "e"), None, S3Options(endpoint_url=secret))()
    assert "SECRETPW" not in unread.value.message

    result = cli(home, "scan", "s3://b", "--s3-endpoint", secret)
    assert result.exit_code == 2 and "SECRETPW" not in result.output
