"""Scanning video: the hashing workers compute vPDQ (from disk, or from an archive member's
bytes); a video over the video size limit is digested and reported skipped; a broken one is
reported with its digests; and a scan finds a re-encoded copy of a bank video by its vPDQ.

All video is generated here with PyAV: slow pans across scikit-image's bundled photos.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from amparo import Amparo, BankInfo, load_settings
from amparo.scan import HashLimits, HashTask, ScanOptions, hash_batch, scan_paths, write_report
from amparo.video_matching import video_entries

av = pytest.importorskip("av")
skdata = pytest.importorskip("skimage.data")

SECONDS, FPS = 5, 10
LIMITS = HashLimits(max_pixels=50_000_000, max_file_bytes=1024)
"""max_file_bytes is tiny on purpose: videos are streamed, so it does not apply to them."""


def _frame(photo: NDArray[np.uint8], i: int, width: int, height: int) -> NDArray[np.uint8]:
    """Frame ``i`` of a slow pan across ``photo``, scaled to ``width`` x ``height``."""
    ph, pw = photo.shape[:2]
    cw, ch = pw // 2, ph // 2
    x, y = (pw - cw) * i // (SECONDS * FPS), (ph - ch) // 3
    window = Image.fromarray(photo[y : y + ch, x : x + cw])
    return np.asarray(window.resize((width, height), Image.Resampling.BILINEAR))


def make_video(
    photo: str = "astronaut", *, width: int = 160, height: int = 120, crf: int = 23
) -> bytes:
    pixels = getattr(skdata, photo)()
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"crf": str(crf)})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(SECONDS * FPS):
            frame = av.VideoFrame.from_ndarray(_frame(pixels, i, width, height), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


@pytest.fixture(scope="module")
def original() -> bytes:
    return make_video()


@pytest.fixture(scope="module")
def copy() -> bytes:
    """The same video re-encoded smaller and at a lower quality."""
    return make_video(width=128, height=96, crf=36)


def _task(path: Path) -> HashTask:
    return HashTask(str(path), path.stat().st_size, 0, "video", fs_path=str(path))


def test_workers_hash_videos_with_vpdq_from_disk_and_from_archives(
    tmp_path: Path, original: bytes
) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(original)
    member = HashTask("a.zip!clip.mp4", len(original), 0, "video", data=original, on_disk=False)
    on_disk, in_archive = hash_batch([_task(path), member], LIMITS)
    for outcome in (on_disk, in_archive):
        assert outcome.status == "ok", outcome.message
        assert outcome.media_type == "video"
        assert outcome.hashes is not None and outcome.hashes.vpdq is not None
        assert outcome.hashes.vpdq.startswith("vpdq1:")
        assert outcome.hashes.video is not None and outcome.hashes.video["frames"]
    assert on_disk.hashes is not None and in_archive.hashes is not None
    assert on_disk.hashes.vpdq == in_archive.hashes.vpdq
    assert on_disk.hashes.sha256 == in_archive.hashes.sha256


def test_video_over_the_video_limit_is_digested_only_and_broken_video_reported(
    tmp_path: Path, original: bytes
) -> None:
    path = tmp_path / "big.mp4"
    path.write_bytes(original)
    small = HashLimits(max_pixels=50_000_000, max_file_bytes=1024, video_max_file_bytes=1000)
    (big,) = hash_batch([_task(path)], small)
    assert big.status == "skipped" and big.code == "too_large"
    assert "video_max_file_bytes" in (big.message or "")
    assert big.hashes is not None and big.hashes.vpdq is None and len(big.hashes.md5) == 32

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(original[: len(original) // 3])
    (bad,) = hash_batch([_task(broken)], LIMITS)
    assert bad.status == "error" and bad.code == "bad_video"
    assert bad.hashes is not None and bad.hashes.vpdq is None and len(bad.hashes.sha256) == 64


@pytest.fixture
def amparo(tmp_path: Path, original: bytes) -> Iterator[Amparo]:
    app = Amparo(load_settings(env={}, overrides={"home": tmp_path / "home"}))
    app.banks.create(BankInfo(name="videos"))
    _, records = video_entries(original, app.settings, category="test-category")
    app.store.banks.add_entries("videos", records, actor="test")
    yield app
    app.close()


def test_scan_finds_a_reencoded_copy_by_vpdq(amparo: Amparo, tmp_path: Path, copy: bytes) -> None:
    """Needs Matcher.match to hand vpdq queries to VideoMatcher."""
    root = tmp_path / "evidence"
    root.mkdir()
    (root / "copy.mp4").write_bytes(copy)
    (root / "other.mp4").write_bytes(make_video("coffee"))
    with zipfile.ZipFile(root / "clips.zip", "w") as zf:
        zf.writestr("inner/copy.mkv.mp4", copy)
    result = scan_paths(amparo, [root], ScanOptions(workers=1, journal=tmp_path / "scan.journal"))
    assert not result.errors and not result.skipped
    found = {m.path: m.match for m in result.matches}
    assert set(found) == {str(root / "copy.mp4"), f"{root / 'clips.zip'}!inner/copy.mkv.mp4"}
    for match in found.values():
        assert match["signal_type"] == "vpdq" and match["bank"] == "videos"
        assert match["category"] == "test-category"
        assert isinstance(match["distance"], int) and match["distance"] <= 20
    assert all("vpdq" not in m.hashes and m.hashes["md5"] for m in result.matches)
    report = io.StringIO()
    write_report(result, report, "csv")
    assert report.getvalue().count(",vpdq,") == 2
