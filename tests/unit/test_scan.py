"""The scanner as a user of its Python API sees it: known images are found in folders and
inside (nested) archives, every kind of bad input is reported and the scan goes on, scanned
files are never touched, and an interrupted scan resumes without hashing done files again.

All media is synthetic: random colour blocks made here, never real material.
"""

from __future__ import annotations

import io
import os
import struct
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

import amparo.scan.engine as scan_engine
import amparo.scan.walk as scan_walk
from amparo import Amparo, BankInfo, load_settings
from amparo.errors import BankNotFoundError
from amparo.scan import (
    HashLimits,
    HashTask,
    ItemRecord,
    ScanOptions,
    ScanResult,
    count_files,
    hash_batch,
    scan_paths,
)
from amparo.scan.model import HashOutcome
from media_support import synthetic_jpeg, zip_bytes


def tar_bytes(members: dict[str, bytes], mode: str = "w") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tf:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header that claims absurd dimensions (a decompression bomb's calling card)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def encrypted_zip(name: str, data: bytes) -> bytes:
    """A zip whose member is flagged encrypted (zipfile cannot write real encryption)."""
    raw = bytearray(zip_bytes({name: data}))
    local = raw.index(b"PK\x03\x04")
    central = raw.index(b"PK\x01\x02")
    raw[local + 6] |= 0x01
    raw[central + 8] |= 0x01
    return bytes(raw)


KNOWN = synthetic_jpeg(1)


def sample_photo(scale: float = 1.0, quality: int = 90) -> bytes:
    """scikit-image's benign astronaut photo; PDQ is robust on photos, less so on noise."""
    skimage_data = pytest.importorskip("skimage.data")
    image = Image.fromarray(skimage_data.astronaut())
    if scale != 1.0:
        image = image.resize((int(image.width * scale), int(image.height * scale)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


OTHER = synthetic_jpeg(2)
KNOWN_TEXT = b"a known non-image file, matched by its digests\n"


@pytest.fixture
def amparo(tmp_path: Path) -> Amparo:
    app = Amparo(load_settings(env={}, overrides={"home": tmp_path / "home"}))
    app.banks.create(BankInfo(name="known"))
    app.banks.add_media("known", KNOWN, category="test-category")
    app.banks.add_media("known", sample_photo(), category="test-category")
    app.banks.create(BankInfo(name="other"))
    app.banks.add_media("other", OTHER)
    from amparo import EntryRecord
    from amparo.signals import digest_bytes

    app.banks.add_entries("known", [EntryRecord("sha256", digest_bytes(KNOWN_TEXT).sha256)])
    yield app
    app.close()


def matched_paths(result: ScanResult, bank: str = "known") -> set[str]:
    return {m.path for m in result.matches if m.match["bank"] == bank}


def issues(result: ScanResult) -> dict[str, str]:
    return {i.path: i.code for i in (*result.errors, *result.skipped)}


def scan(amparo: Amparo, root: Path, **options: object) -> ScanResult:
    options.setdefault("workers", 1)
    options.setdefault("journal", root.parent / "scan.journal")
    return scan_paths(amparo, [root], ScanOptions(**options))  # type: ignore[arg-type]


def test_finds_known_content_in_folders_and_nested_archives(amparo: Amparo, tmp_path: Path):
    root = tmp_path / "evidence"
    (root / "deep" / "er").mkdir(parents=True)
    (root / "deep" / "er" / "holiday.jpg").write_bytes(KNOWN)
    # A resized, re-encoded copy (new bytes, near-identical PDQ), typed by content not name.
    (root / "copy-no-extension").write_bytes(sample_photo(0.8, 70))
    (root / "notes.txt").write_bytes(KNOWN_TEXT)
    (root / "unrelated.jpg").write_bytes(synthetic_jpeg(99))
    inner_zip = zip_bytes({"in/k.jpg": KNOWN, "in/u.jpg": synthetic_jpeg(98)})
    (root / "a.zip").write_bytes(inner_zip)
    (root / "b.tar.gz").write_bytes(tar_bytes({"nested.zip": inner_zip}, "w:gz"))
    (root / "c.tbz").write_bytes(tar_bytes({"x/k.jpg": KNOWN}, "w:bz2"))
    (root / "d.tar.xz").write_bytes(tar_bytes({"k.jpg": KNOWN}, "w:xz"))
    (root / "e.tar").write_bytes(tar_bytes({"t/z.zip": zip_bytes({"n.zip": inner_zip})}))

    result = scan(amparo, root)

    r = str(root)
    assert matched_paths(result) == {
        f"{r}/deep/er/holiday.jpg",
        f"{r}/copy-no-extension",
        f"{r}/notes.txt",
        f"{r}/a.zip!in/k.jpg",
        f"{r}/b.tar.gz!nested.zip!in/k.jpg",
        f"{r}/c.tbz!x/k.jpg",
        f"{r}/d.tar.xz!k.jpg",
        f"{r}/e.tar!t/z.zip!n.zip!in/k.jpg",
    }
    copy = [m for m in result.matches if m.path.endswith("copy-no-extension")]
    assert [m.match["signal_type"] for m in copy] == ["pdq"]  # near-duplicate, not identical
    assert 0 < int(str(copy[0].match["distance"])) <= 31
    assert copy[0].match["category"] == "test-category"
    assert {"md5", "sha1", "sha256", "pdq"} <= copy[0].hashes.keys()
    assert result.errors == []
    assert result.exit_code == 1
    assert count_files([root]) == 9  # files on disk
    assert result.files_seen == 9 + 2 + 3 + 1 + 1 + 4  # and the members of each archive


def test_bad_inputs_are_reported_and_the_scan_goes_on(
    amparo: Amparo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    root = tmp_path / "evidence"
    (root / "sub").mkdir(parents=True)
    (root / "truncated.jpg").write_bytes(KNOWN[: len(KNOWN) // 2])
    (root / "empty.jpg").write_bytes(b"")
    (root / "huge.png").write_bytes(png_claiming(100_000, 100_000))
    (root / "text.jpg").write_text("not an image at all\n")
    (root / "bomb.zip").write_bytes(zip_bytes({"zeros.bin": b"\0" * (20 * 1024 * 1024)}))
    (root / "locked.zip").write_bytes(encrypted_zip("secret.jpg", KNOWN))
    (root / "broken.zip").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    (root / "unreadable.jpg").write_bytes(KNOWN)
    (root / "sub" / "loop").symlink_to(root)
    (root / "self").symlink_to(root / "self")
    (root / "zz-still-found.jpg").write_bytes(KNOWN)

    real_open = scan_walk.open_readonly

    def deny(path: str):  # chmod 000 is no obstacle to root, so simulate it
        if path.endswith("unreadable.jpg"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path)

    monkeypatch.setattr(scan_walk, "open_readonly", deny)
    result = scan(amparo, root)

    r = str(root)
    assert issues(result) == {
        f"{r}/truncated.jpg": "bad_image",
        f"{r}/empty.jpg": "empty",
        f"{r}/huge.png": "bad_image",
        f"{r}/text.jpg": "not_an_image",
        f"{r}/bomb.zip!zeros.bin": "archive_bomb",
        f"{r}/locked.zip!secret.jpg": "encrypted",
        f"{r}/broken.zip": "corrupt_archive",
        f"{r}/unreadable.jpg": "unreadable",
        f"{r}/sub/loop": "symlink_loop",
        f"{r}/self": "symlink_loop",
    }
    huge = next(e for e in result.errors if e.path.endswith("huge.png"))
    assert "100000x100000" in huge.message or "pixels" in huge.message
    assert matched_paths(result) == {f"{r}/zz-still-found.jpg"}
    assert result.skipped_by_reason == {"empty": 1}
    assert result.exit_code == 1  # a match wins over per-file errors


def test_errors_without_matches_exit_2(amparo: Amparo, tmp_path: Path):
    root = tmp_path / "evidence"
    root.mkdir()
    (root / "fine.jpg").write_bytes(synthetic_jpeg(5))
    assert scan(amparo, root).exit_code == 0
    (root / "text.jpg").write_text("nope")
    assert scan(amparo, root).exit_code == 2


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads 000")
def test_chmod_000_file_and_folder_are_reported(amparo: Amparo, tmp_path: Path):
    root = tmp_path / "evidence"
    (root / "closed").mkdir(parents=True)
    (root / "closed.jpg").write_bytes(KNOWN)
    (root / "closed.jpg").chmod(0)
    (root / "closed").chmod(0)
    try:
        result = scan(amparo, root)
    finally:
        (root / "closed").chmod(0o755)
    assert issues(result) == {
        f"{root}/closed.jpg": "unreadable",
        f"{root}/closed": "unreadable",
    }


def test_archive_guards_come_from_settings(tmp_path: Path):
    settings = load_settings(
        env={},
        overrides={
            "home": tmp_path / "home",
            "max_archive_member_bytes": 10_000,
            "max_archive_ratio": 2,
        },
    )
    with Amparo(settings) as app:
        app.banks.create(BankInfo(name="known"))
        app.banks.add_media("known", KNOWN)
        root = tmp_path / "evidence"
        root.mkdir()
        (root / "big-member.zip").write_bytes(zip_bytes({"big.jpg": synthetic_jpeg(3, 900)}))
        zeros = tar_bytes({f"z{i}.bin": b"\0" * 8_000 for i in range(150)}, "w:gz")
        (root / "expands.tgz").write_bytes(zeros)
        (root / "ok.zip").write_bytes(zip_bytes({"k.jpg": KNOWN}))
        result = scan(app, root)
    found = issues(result)
    assert found[f"{root}/big-member.zip!big.jpg"] == "archive_bomb"
    assert found[f"{root}/expands.tgz"] == "archive_bomb"  # total allowance used up
    assert matched_paths(result) == {f"{root}/ok.zip!k.jpg"}


def test_nesting_depth_is_limited(amparo: Amparo, tmp_path: Path):
    root = tmp_path / "evidence"
    root.mkdir()
    (root / "outer.zip").write_bytes(zip_bytes({"inner.zip": zip_bytes({"k.jpg": KNOWN})}))
    result = scan(amparo, root, max_depth=1)
    assert matched_paths(result) == set()
    assert issues(result) == {f"{root}/outer.zip!inner.zip": "too_deep"}
    assert matched_paths(scan(amparo, root, max_depth=2)) == {f"{root}/outer.zip!inner.zip!k.jpg"}


def test_files_over_max_file_bytes_are_digested_not_decoded(tmp_path: Path):
    settings = load_settings(env={}, overrides={"home": tmp_path / "home", "max_file_bytes": 1000})
    with Amparo(settings) as app:
        app.banks.create(BankInfo(name="known"))
        app.banks.add_media("known", KNOWN)
        root = tmp_path / "evidence"
        root.mkdir()
        (root / "big.jpg").write_bytes(KNOWN)
        result = scan(app, root)
    assert [m.match["signal_type"] for m in result.matches] == ["md5"]
    assert issues(result) == {f"{root}/big.jpg": "too_large"}
    assert "pdq" not in result.matches[0].hashes


def test_only_the_chosen_banks_are_used(amparo: Amparo, tmp_path: Path):
    root = tmp_path / "evidence"
    root.mkdir()
    (root / "k.jpg").write_bytes(KNOWN)
    (root / "o.jpg").write_bytes(OTHER)
    assert {m.match["bank"] for m in scan(amparo, root).matches} == {"known", "other"}
    assert {m.match["bank"] for m in scan(amparo, root, banks=["other"]).matches} == {"other"}
    with pytest.raises(BankNotFoundError):
        scan(amparo, root, banks=["nope"])


def test_scanned_files_are_never_changed(amparo: Amparo, tmp_path: Path):
    root = tmp_path / "evidence"
    root.mkdir()
    (root / "k.jpg").write_bytes(KNOWN)
    (root / "a.zip").write_bytes(zip_bytes({"k.jpg": KNOWN}))
    (root / "t.txt").write_text("hello")
    old = 1_000_000_000
    for path in root.iterdir():
        os.utime(path, ns=(old, old))

    def snapshot() -> dict[str, tuple[int, int, bytes]]:
        return {
            p.name: (p.stat().st_mtime_ns, p.stat().st_mode, p.read_bytes()) for p in root.iterdir()
        }

    before = snapshot()
    scan(amparo, root, workers=2)
    assert snapshot() == before  # same names (nothing written next to them), times, bytes


def test_worker_processes_find_the_same_as_in_process(amparo: Amparo, tmp_path: Path):
    root = tmp_path / "evidence"
    root.mkdir()
    for i in range(20):
        (root / f"u{i:02}.jpg").write_bytes(synthetic_jpeg(100 + i, size=64))
    (root / "k.jpg").write_bytes(KNOWN)
    (root / "a.zip").write_bytes(zip_bytes({"k.jpg": KNOWN}))
    (root / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    one = scan(amparo, root, workers=1, hash_batch=4)
    two = scan(amparo, root, workers=2, hash_batch=4)
    assert [m.to_json() for m in one.matches] == [m.to_json() for m in two.matches]
    assert one.errors == two.errors
    assert one.summary()["hashed"] == two.summary()["hashed"] == 24


def _count_hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    hashed: list[str] = []
    real: Callable[[list[HashTask], HashLimits], list[HashOutcome]] = scan_engine.hash_batch

    def counting(tasks: list[HashTask], limits: HashLimits) -> list[HashOutcome]:
        hashed.extend(t.path for t in tasks)
        return real(tasks, limits)

    monkeypatch.setattr(scan_engine, "hash_batch", counting)
    return hashed


def test_resume_skips_done_files_and_keeps_their_matches(
    amparo: Amparo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    root = tmp_path / "evidence"
    root.mkdir()
    (root / "a-known.jpg").write_bytes(KNOWN)
    for i in range(12):
        (root / f"b{i:02}.jpg").write_bytes(synthetic_jpeg(200 + i, size=64))
    (root / "c.zip").write_bytes(zip_bytes({"k.jpg": KNOWN, "u.jpg": synthetic_jpeg(7, 64)}))
    journal = tmp_path / "j.journal"
    full = scan(amparo, root, journal=journal, match_batch=4)
    assert len(full.matches) == 4

    # Simulate a kill: keep the header and the first 6 items, and half of the next line.
    lines = journal.read_text().splitlines(keepends=True)
    assert len(lines) == 1 + 16
    journal.write_text("".join(lines[:7]) + lines[7][: len(lines[7]) // 2])
    done = [ItemRecord.from_json(__import__("json").loads(line)).path for line in lines[1:7]]
    (root / "b03.jpg").write_bytes(synthetic_jpeg(999, size=64))  # changed since: redo it

    hashed = _count_hashed(monkeypatch)
    resumed = scan(amparo, root, journal=journal, resume=True, match_batch=4)

    assert f"{root}/b03.jpg" in done
    assert set(hashed).isdisjoint(set(done) - {f"{root}/b03.jpg"})
    assert len(hashed) == 16 - 6 + 1
    assert resumed.resumed == 5
    assert [m.to_json() for m in resumed.matches] == [m.to_json() for m in full.matches]
    assert resumed.summary()["files_seen"] == full.summary()["files_seen"]
    # A resume of a finished scan hashes nothing at all.
    hashed.clear()
    again = scan(amparo, root, journal=journal, resume=True)
    assert hashed == [] and again.resumed == 16 and len(again.matches) == 4


def test_resume_refuses_a_journal_of_other_banks(amparo: Amparo, tmp_path: Path):
    root = tmp_path / "evidence"
    root.mkdir()
    (root / "k.jpg").write_bytes(KNOWN)
    scan(amparo, root, banks=["known"])
    from amparo.errors import InputError

    with pytest.raises(InputError, match="other banks") as refused:
        scan(amparo, root, banks=["other"], resume=True)
    assert "--bank known, not --bank other" in str(refused.value)
    scan(amparo, root)  # every enabled bank
    with pytest.raises(InputError) as refused:
        scan(amparo, root, banks=["other", "known"], resume=True)
    message = str(refused.value)
    assert "None" not in message
    assert "every enabled bank (no --bank), not --bank known, --bank other" in message


def test_journal_keeps_no_hash_of_unmatched_content(amparo: Amparo, tmp_path: Path):
    root = tmp_path / "evidence"
    root.mkdir()
    unmatched = synthetic_jpeg(77)
    (root / "u.jpg").write_bytes(unmatched)
    (root / "k.jpg").write_bytes(KNOWN)
    result = scan(amparo, root)
    text = (tmp_path / "scan.journal").read_text()
    from amparo.signals import digest_bytes

    digests = digest_bytes(unmatched)
    assert digests.md5 not in text and digests.sha256 not in text
    assert digest_bytes(KNOWN).md5 in text
    assert (tmp_path / "scan.journal").stat().st_mode & 0o077 == 0
    assert result.exit_code == 1


def test_hash_batch_is_a_pure_function_of_its_tasks():
    limits = HashLimits(max_pixels=10_000_000, max_file_bytes=1_000_000)
    tasks = [
        HashTask("x.zip!a.jpg", len(KNOWN), 0, "jpeg", data=KNOWN, on_disk=False),
        HashTask("x.zip!b.jpg", 5, 0, None, data=b"hello", on_disk=False),
        HashTask("x.zip!c.bin", 5, 0, None, data=b"hello", on_disk=False),
    ]
    first = hash_batch(tasks, limits)
    assert [(o.status, o.code) for o in first] == [
        ("ok", None),
        ("error", "not_an_image"),
        ("ok", None),
    ]
    assert first[0].hashes is not None and first[0].hashes.pdq is not None
    assert [o.hashes for o in hash_batch(tasks, limits)] == [o.hashes for o in first]


def test_an_unexpected_failure_is_that_files_error_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    import amparo.scan.worker as worker

    real = worker.hash_task

    def flaky(task: HashTask, limits: HashLimits) -> HashOutcome:
        if task.path.endswith("bad.jpg"):
            raise ValueError("decoder exploded")
        return real(task, limits)

    monkeypatch.setattr(worker, "hash_task", flaky)
    tasks = []
    for name in ("a.jpg", "bad.jpg", "b.jpg"):
        path = tmp_path / name
        path.write_bytes(synthetic_jpeg(len(name)))
        tasks.append(
            HashTask(path=str(path), size=path.stat().st_size, mtime_ns=0, fs_path=str(path))
        )
    outcomes = worker.hash_batch(tasks, HashLimits(max_pixels=10_000_000, max_file_bytes=10**6))
    assert [o.status for o in outcomes] == ["ok", "error", "ok"]
    assert outcomes[1].code == "hash_failed" and "decoder exploded" in (outcomes[1].message or "")


def test_a_journal_with_absurd_numbers_is_ignored_not_fatal(tmp_path: Path):
    from amparo.scan.journal import ScanJournal

    journal = tmp_path / "scan.journal"
    journal.write_text(
        '{"kind": "header", "version": 1, "banks": null}\n'
        '{"kind": "item", "path": "x", "size": 1e999, "mtime_ns": 1, "media_type": null, '
        '"status": "ok"}\n'
    )
    resumed = ScanJournal(journal, banks=None, resume=True)
    assert resumed.previous == {}
    resumed.close()


def test_compressed_file_starting_with_a_zero_block_is_hashed_not_an_empty_tar(
    amparo: Amparo, tmp_path: Path
):
    import bz2
    import gzip
    import lzma

    from amparo import EntryRecord
    from amparo.signals import digest_bytes

    # Not a tar: a disk image or database dump often starts with 512 zero bytes.
    content = b"\0" * 512 + b"content that is not a tar archive\n" * 20
    amparo.banks.add_entries("known", [EntryRecord("sha256", digest_bytes(content).sha256)])
    root = tmp_path / "evidence"
    root.mkdir()
    (root / "dump.bin.gz").write_bytes(gzip.compress(content))
    (root / "dump.bin.bz2").write_bytes(bz2.compress(content))
    (root / "dump.bin.xz").write_bytes(lzma.compress(content))
    (root / "all-zeros.gz").write_bytes(gzip.compress(b"\0" * 10240))  # an empty tar, or not
    (root / "real.tgz").write_bytes(tar_bytes({"k.jpg": KNOWN}, "w:gz"))

    result = scan(amparo, root)

    r = str(root)
    assert matched_paths(result) == {
        f"{r}/dump.bin.gz!dump.bin",
        f"{r}/dump.bin.bz2!dump.bin",
        f"{r}/dump.bin.xz!dump.bin",
        f"{r}/real.tgz!k.jpg",
    }
    assert result.errors == []
    # Each compressed file is digested itself, and so is its decompressed content.
    assert result.files_seen == 5 + 5 and result.hashed == 10


def test_only_a_valid_header_makes_a_tar():
    from amparo.scan.archives import is_tar_header

    header = tar_bytes({"a.txt": b"x"})[:512]
    assert is_tar_header(header)
    assert not is_tar_header(b"\0" * 512)
    assert not is_tar_header(header[:511])
    broken = bytearray(header)
    broken[0] ^= 0xFF  # the name changes, the checksum does not
    assert not is_tar_header(bytes(broken))


def test_low_quality_images_are_reported_as_such(amparo: Amparo, tmp_path: Path):
    from amparo.scan import iter_jsonl

    root = tmp_path / "evidence"
    root.mkdir()
    flat = io.BytesIO()
    Image.new("RGB", (128, 128), (120, 120, 120)).save(flat, "PNG")  # no detail: quality 0
    (root / "flat.png").write_bytes(flat.getvalue())
    (root / "k.jpg").write_bytes(KNOWN)

    result = scan(amparo, root)

    assert issues(result) == {f"{root}/flat.png": "low_quality"}
    assert result.skipped_by_reason == {"low_quality": 1}
    [record] = [r for r in iter_jsonl(result) if r.get("code") == "low_quality"]
    assert record["kind"] == "skipped" and "PDQ quality 0 is below 50" in str(record["reason"])
    assert result.exit_code == 1  # the known image; a low-quality one is no error
    # A resume keeps saying so.
    again = scan(amparo, root, resume=True)
    assert again.resumed == 2 and issues(again) == issues(result)
