"""Scanning objects in a bucket (``amparo scan s3://bucket/prefix``) on moto's S3 server:
the same findings as the same tree on disk, archives read in the worker, resume by ETag,
objects gone or changed under the scan, clear errors for what cannot be reached, and the
action rules fed the object's bytes (nothing in the bucket is ever written).

Synthetic images and scikit-image's bundled photos only.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import amparo.scan.scanner as scanner
from amparo import Amparo, BankInfo, EntryRecord, load_settings
from amparo.actions import Rule
from amparo.cli.main import app
from amparo.errors import ConfigError, InputError
from amparo.scan import HashLimits, HashOutcome, HashTask, ItemRecord, ScanOptions, scan_paths
from amparo.scan.model import ObjectRef, S3Options
from amparo.scan.s3 import check_access, count_objects, forget_clients, object_media, walk_s3
from amparo.scan.s3_worker import hash_object as read_object
from amparo.scan.worker import hash_task
from amparo.signals import digest_bytes
from media_support import synthetic_jpeg, zip_bytes
from s3_support import MotoS3, free_port


def tar_gz_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


KNOWN = synthetic_jpeg(1)
OTHER = synthetic_jpeg(2)
KNOWN_TEXT = b"a known non-image file, matched by its digests\n"
INNER_ZIP = zip_bytes({"deep/k.jpg": KNOWN, "deep/u.jpg": OTHER})


def make_tree(root: Path) -> Path:
    """Files, nested folders and archives (a zip, a tar.gz, a zip inside a zip)."""
    files = {
        "k.jpg": KNOWN,
        "u.jpg": OTHER,
        "photos/a/k2.jpg": KNOWN,
        "photos/a/b/deep.txt": KNOWN_TEXT,
        "photos/a/b/note.txt": b"nothing known\n",
        "photos2/x.jpg": OTHER,
        "arch/a.zip": zip_bytes({"inner/k.jpg": KNOWN, "n.txt": b"hello"}),
        "arch/t.tar.gz": tar_gz_bytes({"k.jpg": KNOWN, "u.jpg": OTHER}),
        "arch/nested.zip": zip_bytes({"in.zip": INNER_ZIP, "top.jpg": OTHER}),
        "empty.bin": b"",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture(scope="module")
def store() -> Iterator[MotoS3]:
    with MotoS3() as moto:
        yield moto


@pytest.fixture
def s3(store: MotoS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    store.use(monkeypatch)
    forget_clients()  # clients keep the credentials they were made with
    yield store
    forget_clients()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    with Amparo(load_settings(env={}, overrides={"home": home})) as amparo:
        amparo.banks.create(BankInfo(name="known"))
        amparo.banks.add_media("known", KNOWN, category="test-category")
        amparo.banks.add_entries("known", [EntryRecord("sha256", digest_bytes(KNOWN_TEXT).sha256)])
    return home


@pytest.fixture
def amparo(home: Path, s3: MotoS3) -> Iterator[Amparo]:
    settings = load_settings(env={}, overrides={"home": home, "s3_endpoint": s3.endpoint})
    with Amparo(settings) as app_:
        yield app_


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "evidence")


@pytest.fixture
def bucket(s3: MotoS3, tree: Path) -> str:
    name = s3.bucket()
    s3.put_tree(name, "tree/", tree)
    s3.put(name, "tree/photos/", b"")  # a folder marker, as consoles make them
    return name


def scan(amparo: Amparo, roots: list[str], tmp_path: Path, **options: Any) -> Scanned:
    records: list[ItemRecord] = []
    options.setdefault("workers", 1)
    options.setdefault("journal", tmp_path / "scan.journal")
    result = scan_paths(amparo, roots, ScanOptions(**options), on_record=records.append)
    return Scanned(result, records)


class Scanned:
    """A result and the records the scan passed to ``on_record``."""

    def __init__(self, result: Any, records: list[ItemRecord]) -> None:
        self.result = result
        self.records = records

    def view(self, root: str) -> dict[str, Any]:
        """What the report says, with ``root`` cut off the paths."""

        def rel(path: str) -> str:
            assert path.startswith(root), path
            return path[len(root) :]

        r = self.result
        return {
            "records": sorted(
                (
                    rel(x.path),
                    x.size,
                    x.media_type,
                    x.status,
                    x.code,
                    x.on_disk,
                    sorted(str(m["bank"]) for m in x.matches),
                    x.hashes,
                )
                for x in self.records
            ),
            "issues": sorted((i.kind, rel(i.path), i.code) for i in (*r.errors, *r.skipped)),
            "counts": (r.files_seen, r.hashed, r.matched_files, len(r.matches), r.exit_code),
        }


def test_a_bucket_reports_what_the_same_tree_on_disk_reports(
    amparo: Amparo, tree: Path, bucket: str, tmp_path: Path, s3: MotoS3
) -> None:
    before = s3.keys(bucket)
    local = scan(amparo, [str(tree)], tmp_path, journal=tmp_path / "local.journal")
    remote = scan(amparo, [f"s3://{bucket}/tree"], tmp_path)
    assert remote.view(f"s3://{bucket}/tree") == local.view(str(tree))
    matched = {m.path for m in remote.result.matches}
    root = f"s3://{bucket}/tree/"
    assert matched == {
        root + "k.jpg",
        root + "photos/a/k2.jpg",
        root + "photos/a/b/deep.txt",
        root + "arch/a.zip!inner/k.jpg",
        root + "arch/t.tar.gz!k.jpg",
        root + "arch/nested.zip!in.zip!deep/k.jpg",
    }
    # Members carry the object's ETag (resume re-reads an archive that changed).
    etags = {k.removeprefix("tree/"): v.strip('"') for k, v in before.items()}
    member = next(x for x in remote.records if x.path.endswith("nested.zip!in.zip!deep/k.jpg"))
    assert member.etag == etags["arch/nested.zip"] and not member.on_disk
    assert s3.keys(bucket) == before  # nothing written, nothing removed


def test_a_prefix_is_a_folder_and_a_url_naming_nothing_is_a_problem(
    s3: MotoS3, bucket: str
) -> None:
    s3.put(bucket, "tree/photos", KNOWN)  # an object named like the folder
    options = S3Options(endpoint_url=s3.endpoint)
    items = list(walk_s3([f"s3://{bucket}/tree/photos"], options))
    paths = [i.path for i in items if isinstance(i, HashTask)]
    root = f"s3://{bucket}/tree/"
    assert paths == [
        root + "photos",
        root + "photos/a/b/deep.txt",
        root + "photos/a/b/note.txt",
        root + "photos/a/k2.jpg",
    ]  # not photos2/, not the folder marker
    task = items[0]
    assert isinstance(task, HashTask) and task.obj is not None and task.media_type is None
    assert task.fs_path is None and task.data is None and task.size == len(KNOWN)
    assert task.obj == ObjectRef(bucket, "tree/photos", hashlib.md5(KNOWN).hexdigest())
    assert count_objects([f"s3://{bucket}/tree/photos", f"s3://{bucket}/tree/"], options) == 15

    (nothing,) = walk_s3([f"s3://{bucket}/tree/nope"], options)
    assert (nothing.path, nothing.status, nothing.code) == (
        f"s3://{bucket}/tree/nope",
        "error",
        "not_found",
    )


def test_resume_rereads_a_changed_object_only(
    amparo: Amparo, bucket: str, tmp_path: Path, s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{bucket}/tree"
    first = scan(amparo, [url], tmp_path)
    s3.put(bucket, "tree/u.jpg", KNOWN)  # same name, new content (and ETag): now it matches
    s3.put(bucket, "tree/arch/a.zip", zip_bytes({"inner/k.jpg": OTHER, "n.txt": b"hello"}))
    reads: list[str] = []
    real = scanner.walk_s3

    def counting(*args: Any) -> Iterator[Any]:
        for item in real(*args):
            if isinstance(item, HashTask):
                reads.append(item.path)
            yield item

    monkeypatch.setattr(scanner, "walk_s3", counting)
    second = scan(amparo, [url], tmp_path, resume=True)
    root = url + "/"
    assert second.result.files_seen == first.result.files_seen
    paths = [x.path for x in second.records]
    assert len(paths) == len(set(paths))  # no item counted twice
    assert {x.path for x in second.records} == {x.path for x in first.records}
    # The changed object and the archives are read again (members are not listed).
    assert sorted(reads) == [
        root + p for p in ("arch/a.zip", "arch/nested.zip", "arch/t.tar.gz", "u.jpg")
    ]
    assert second.result.resumed == len(second.records) - 4  # u.jpg, a.zip and its 2 members
    matched = {m.path for m in second.result.matches}
    assert root + "u.jpg" in matched and root + "arch/a.zip!inner/k.jpg" not in matched
    assert root + "arch/nested.zip!in.zip!deep/k.jpg" in matched  # resumed, still reported


def test_an_object_deleted_after_listing_is_not_found_and_the_scan_goes_on(
    amparo: Amparo, bucket: str, tmp_path: Path, s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = scanner.walk_s3

    def deleting(*args: Any) -> Iterator[Any]:
        for item in real(*args):
            if isinstance(item, HashTask) and item.path.endswith("/k.jpg") and item.obj:
                s3.client().delete_object(Bucket=item.obj.bucket, Key=item.obj.key)
            yield item

    monkeypatch.setattr(scanner, "walk_s3", deleting)
    done = scan(amparo, [f"s3://{bucket}/tree"], tmp_path)
    errors = {i.path: (i.code, i.message) for i in done.result.errors}
    gone = f"s3://{bucket}/tree/k.jpg"
    assert errors[gone][0] == "not_found" and "deleted" in errors[gone][1]
    assert f"s3://{bucket}/tree/photos/a/k2.jpg" in {m.path for m in done.result.matches}


@pytest.mark.slow
def test_mixed_local_and_bucket_roots(
    home: Path, tree: Path, bucket: str, tmp_path: Path, s3: MotoS3
) -> None:
    """`amparo scan` in its own process (as an operator runs it, credentials in its
    environment), worker processes reading the objects: a forkserver started earlier by
    another test would hold that test's environment, not this one's."""
    report = tmp_path / "report.jsonl"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AMPARO_"))},
        **s3.env(),
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AMPARO_HOME": str(home),
    }
    roots = [str(tree / "photos"), f"s3://{bucket}/tree/arch"]
    command = [sys.executable, "-m", "amparo.cli.main", "scan", "--workers", "2"]
    command += ["--s3-endpoint", s3.endpoint, "--report", str(report), *roots]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # matches found
    assert "Traceback" not in done.stderr
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert {x["path"] for x in lines if x.get("kind") == "match"} == {
        str(tree / "photos/a/k2.jpg"),
        str(tree / "photos/a/b/deep.txt"),
        f"s3://{bucket}/tree/arch/a.zip!inner/k.jpg",
        f"s3://{bucket}/tree/arch/t.tar.gz!k.jpg",
        f"s3://{bucket}/tree/arch/nested.zip!in.zip!deep/k.jpg",
    }


def hash_object(task: HashTask, limits: HashLimits) -> list[Any]:
    return read_object(task, limits, hash_task)


def test_the_worker_reads_each_object_once_within_the_limits(s3: MotoS3) -> None:
    bucket = s3.bucket()
    big = synthetic_jpeg(3, size=512)
    etag = s3.put(bucket, "big.jpg", big)
    limits = HashLimits(max_pixels=50_000_000, max_file_bytes=len(big) - 1)
    limits = replace(limits, s3=S3Options(endpoint_url=s3.endpoint))
    task = HashTask(f"s3://{bucket}/big.jpg", len(big), 0, obj=ObjectRef(bucket, "big.jpg", etag))
    (outcome,) = hash_object(task, limits)
    assert isinstance(outcome, HashOutcome) and outcome.code == "too_large"
    assert outcome.hashes is not None and outcome.hashes.sha256 == hashlib.sha256(big).hexdigest()
    assert outcome.hashes.pdq is None and outcome.obj == task.obj and outcome.etag == etag

    (fits,) = hash_object(task, replace(limits, max_file_bytes=len(big)))
    assert isinstance(fits, HashOutcome) and fits.status == "ok" and fits.hashes is not None
    assert fits.hashes.pdq is not None and fits.media_type == "jpeg"

    gone = replace(task, path=f"s3://{bucket}/nope", obj=ObjectRef(bucket, "nope", "x"))
    (missing,) = hash_object(gone, limits)
    assert isinstance(missing, HashOutcome) and missing.code == "not_found"
    elsewhere = replace(limits, s3=S3Options(endpoint_url=f"http://127.0.0.1:{free_port()}"))
    (unreachable,) = hash_object(task, elsewhere)
    assert isinstance(unreachable, HashOutcome) and unreachable.code == "unreadable"
    assert "EndpointConnectionError" in (unreachable.message or "")


def test_a_video_object_is_spooled_and_hashed_like_a_file(s3: MotoS3) -> None:
    av = pytest.importorskip("av")
    skdata = pytest.importorskip("skimage.data")
    buf = io.BytesIO()
    photo = Image.fromarray(skdata.astronaut()).resize((160, 160))
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 160, "yuv420p"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.asarray(photo.rotate(i)), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    video = buf.getvalue()
    bucket = s3.bucket()
    etag = s3.put(bucket, "v.mp4", video)
    limits = HashLimits(max_pixels=50_000_000, max_file_bytes=1024)
    limits = replace(limits, s3=S3Options(endpoint_url=s3.endpoint))
    task = HashTask(f"s3://{bucket}/v.mp4", len(video), 0, obj=ObjectRef(bucket, "v.mp4", etag))
    from amparo.scan import hash_batch

    (outcome,) = hash_object(task, limits)
    (local,) = hash_batch([HashTask("v.mp4", len(video), 0, "video", data=video)], limits)
    assert isinstance(outcome, HashOutcome) and isinstance(local, HashOutcome)
    assert outcome.status == "ok" and outcome.hashes is not None and local.hashes is not None
    assert outcome.hashes.vpdq and outcome.hashes.vpdq == local.hashes.vpdq
    (over,) = hash_object(task, replace(limits, video_max_file_bytes=len(video) - 1))
    assert isinstance(over, HashOutcome) and over.code == "too_large" and over.hashes
    assert over.hashes.sha256 == hashlib.sha256(video).hexdigest()


def test_a_matched_object_feeds_the_rules_its_own_bytes(
    amparo: Amparo, bucket: str, tmp_path: Path, s3: MotoS3
) -> None:
    before = s3.keys(bucket)
    amparo.actions.add_rule(
        Rule.from_json(
            {
                "name": "keep",
                "actions": [{"type": "quarantine"}],
                "conditions": {"source_kinds": ["scan"]},
            }
        ),
        actor="t",
    )
    amparo.actions.add_rule(
        Rule.from_json({"name": "move", "actions": [{"type": "quarantine", "mode": "move"}]}),
        actor="t",
    )
    done = scan(amparo, [f"s3://{bucket}/tree/k.jpg", f"s3://{bucket}/tree/photos"], tmp_path)
    assert done.result.matched_files == 3
    log = amparo.actions.log()
    kept = {r.source["path"]: r.detail["evidence_id"] for r in log if r.rule == "keep"}
    root = f"s3://{bucket}/tree/"
    assert set(kept) == {root + "k.jpg", root + "photos/a/k2.jpg", root + "photos/a/b/deep.txt"}
    assert amparo.evidence.read(kept[root + "k.jpg"], actor="t") == KNOWN
    assert amparo.evidence.read(kept[root + "photos/a/b/deep.txt"], actor="t") == KNOWN_TEXT
    moved = [r for r in log if r.rule == "move"]
    assert {r.outcome for r in moved} == {"skipped"}  # move is for files on disk only
    assert s3.keys(bucket) == before  # the bucket is never written to


def test_an_archive_member_is_read_again_for_the_rules(s3: MotoS3) -> None:
    bucket = s3.bucket()
    outer = zip_bytes({"in.zip": INNER_ZIP})
    etag = s3.put(bucket, "o.zip", outer)
    options = S3Options(endpoint_url=s3.endpoint)
    obj = ObjectRef(bucket, "o.zip", etag)
    assert object_media(obj, "in.zip!deep/k.jpg", options)() == KNOWN
    assert object_media(obj, None, options)() == outer
    s3.put(bucket, "o.zip", zip_bytes({"other.jpg": OTHER}))
    with pytest.raises(Exception, match="changed since it was hashed"):
        object_media(obj, None, options)()


def test_unreachable_buckets_fail_early_and_clearly(s3: MotoS3, bucket: str) -> None:
    options = S3Options(endpoint_url=s3.endpoint)
    check_access([f"s3://{bucket}/tree", f"s3://{bucket}/nope"], options)
    with pytest.raises(InputError, match="no bucket named 'missing-bucket'") as no_bucket:
        check_access(["s3://missing-bucket/x"], options)
    assert "s3_endpoint" in (no_bucket.value.hint or "") or "--s3-endpoint" in str(
        no_bucket.value.hint
    )
    nowhere = S3Options(endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConfigError, match="cannot reach the S3 endpoint"):
        check_access([f"s3://{bucket}"], nowhere)


def test_missing_credentials_fail_early(s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    forget_clients()
    with pytest.raises(ConfigError, match="no AWS credentials") as missing:
        check_access(["s3://b"], S3Options(endpoint_url=s3.endpoint))
    assert "AWS_ACCESS_KEY_ID" in (missing.value.hint or "")


def cli(home: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--home", str(home), *args])


@pytest.mark.slow
def test_cli_scans_a_bucket_and_refuses_bad_credentials(
    home: Path, bucket: str, s3: MotoS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"s3://{bucket}/tree"
    report = tmp_path / "r.jsonl"
    ok = cli(home, "scan", url, "--s3-endpoint", s3.endpoint, "-j", "1", "-o", str(report))
    assert ok.exit_code == 1, ok.output  # something matched
    assert f"{url}/arch/t.tar.gz!k.jpg" in report.read_text()

    missing = cli(home, "scan", "s3://no-such-bucket-here", "--s3-endpoint", s3.endpoint)
    assert missing.exit_code == 2 and "no bucket named" in missing.output
    assert "Traceback" not in missing.output

    key_id, secret = s3.iam_user("scanner")
    bare_key, bare_secret = s3.iam_user("nobody", allow_s3=False)
    with s3.enforced_auth():
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        forget_clients()
        good = cli(home, "scan", url, "--s3-endpoint", s3.endpoint, "-j", "1", "--no-actions")
        assert good.exit_code == 1, good.output
        for key, wrong, code in (
            (key_id, "not-the-secret-" + secret[:4], "SignatureDoesNotMatch"),
            ("AKIANOSUCHKEY0000000", secret, "InvalidAccessKeyId"),
            (bare_key, bare_secret, "AccessDenied"),
        ):
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
            forget_clients()
            refused = cli(home, "scan", url, "--s3-endpoint", s3.endpoint, "-j", "1")
            assert refused.exit_code == 2, refused.output
            assert code in refused.output and "Traceback" not in refused.output
            assert wrong not in refused.output  # never echo a secret
    forget_clients()


def test_an_object_changed_before_the_rules_run_is_not_preserved(
    amparo: Amparo, bucket: str, tmp_path: Path, s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    amparo.actions.add_rule(
        Rule.from_json({"name": "keep", "actions": [{"type": "quarantine"}]}), actor="t"
    )
    real = scanner.object_media

    def replaced_first(obj: ObjectRef, *args: Any) -> Any:
        s3.put(obj.bucket, obj.key, OTHER)  # replaced between hashing and acting
        return real(obj, *args)

    monkeypatch.setattr(scanner, "object_media", replaced_first)
    done = scan(amparo, [f"s3://{bucket}/tree/k.jpg"], tmp_path)
    assert done.result.matched_files == 1 and not done.result.interrupted
    (taken,) = amparo.actions.log()
    assert taken.outcome == "skipped" and "evidence_id" not in taken.detail


def test_no_boto3_or_no_such_profile_is_a_config_error(
    s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="no AWS profile named 'nope'"):
        check_access(["s3://b"], S3Options(endpoint_url=s3.endpoint, profile="nope"))
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if not installed
    with pytest.raises(ConfigError, match="needs boto3") as missing:
        check_access(["s3://b"], S3Options(endpoint_url=s3.endpoint, region="eu-west-1"))
    assert "amparo[s3]" in (missing.value.hint or "")
