"""VideoMatcher against a real (SQLite) store: a re-encoded copy of a bank video is found with
its shares and time ranges, an unrelated video is not, and removed, disabled, paused entries
and disabled banks stop matching at the next lookup. Bank videos are hashed at the bank rate
(10 frames a second), queries at 1, as configured by default.

All video is generated here with PyAV from scikit-image's bundled photos.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from amparo.banks.model import BankInfo, EntryRecord
from amparo.config import Settings, load_settings
from amparo.errors import ConfigError
from amparo.hashing import MediaHashes, hash_media, hash_video_media
from amparo.signals.vpdq import VpdqFrames, parse_vpdq
from amparo.store import Store
from amparo.video_matching import (
    VideoMatcher,
    VideoMatchResult,
    bank_sample_fps,
    share_distance,
    video_distance_threshold,
    video_entries,
)

av = pytest.importorskip("av")
skdata = pytest.importorskip("skimage.data")

SECONDS, FPS = 6, 10


def _pan(photo: NDArray[np.uint8], i: int, width: int, height: int) -> NDArray[np.uint8]:
    t = i / (SECONDS * FPS)
    ph, pw = photo.shape[:2]
    cw, ch = int(pw * (0.6 - 0.2 * t)), int(ph * (0.6 - 0.2 * t))
    x, y = int((pw - cw) * t), int((ph - ch) * (0.3 + 0.5 * t))
    window = Image.fromarray(photo[y : y + ch, x : x + cw])
    return np.asarray(window.resize((width, height), Image.Resampling.BILINEAR))


def make_clip(
    photo: NDArray[np.uint8], *, width: int = 160, height: int = 120, crf: int = 23
) -> bytes:
    """A benign H.264 MP4: a slow pan and zoom across a bundled photo."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"crf": str(crf)})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(SECONDS * FPS):
            frame = av.VideoFrame.from_ndarray(_pan(photo, i, width, height), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


@pytest.fixture(scope="module")
def clips() -> dict[str, bytes]:
    astronaut = skdata.astronaut()
    return {
        "original": make_clip(astronaut),
        "copy": make_clip(astronaut, width=128, height=96, crf=35),
        "unrelated": make_clip(skdata.coffee()),
    }


@pytest.fixture(scope="module")
def queries(clips: dict[str, bytes]) -> dict[str, MediaHashes]:
    return {name: hash_video_media(data) for name, data in clips.items()}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(env={}, overrides={"home": tmp_path})


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store(settings.resolved_database_url)
    yield s
    s.close()


def _bank(store: Store, name: str, clip: bytes, settings: Settings) -> int:
    info = store.banks.create(BankInfo(name=name), actor="test")
    _, records = video_entries(clip, settings, category="test", tags=["t"], source_id=name)
    store.banks.add_entries(name, records, actor="test")
    assert info.id is not None
    return info.id


def _enabled(store: Store) -> dict[int, BankInfo]:
    return {b.id: b for b in store.banks.list(with_counts=False) if b.id is not None and b.enabled}


def _vpdq(hashes: MediaHashes) -> list[VpdqFrames]:
    assert hashes.vpdq is not None
    return [parse_vpdq(hashes.vpdq)]


def _found(results: list[list[VideoMatchResult]]) -> set[tuple[str, int]]:
    return {(r.bank, r.entry_id) for r in results[0]}


def test_copy_matches_with_shares_and_ranges_and_unrelated_does_not(
    store: Store, settings: Settings, clips: dict[str, bytes], queries: dict[str, MediaHashes]
) -> None:
    _bank(store, "videos", clips["original"], settings)
    matcher = VideoMatcher(store, settings)
    copy, unrelated = matcher.match(
        [*_vpdq(queries["copy"]), *_vpdq(queries["unrelated"])], _enabled(store)
    )
    assert len(copy) == 1 and not unrelated
    found = copy[0]
    assert found.bank == "videos" and found.signal_type == "vpdq"
    assert found.category == "test" and found.tags == ("t",) and found.source_id == "videos"
    detail = found.detail
    assert detail.query_share >= 0.8 and detail.bank_share >= 0.8
    assert found.distance == share_distance(detail.query_share, detail.bank_share) <= 20
    assert detail.query_ranges[0].start == 0.0
    assert detail.bank_ranges[-1].end >= SECONDS - 1
    assert set(detail.to_json()) >= {"query_share", "bank_share", "query_ranges", "bank_ranges"}
    assert len(matcher) == 1 and matcher.frame_count > SECONDS


def test_removed_disabled_paused_entries_and_disabled_banks_stop_matching(
    store: Store, settings: Settings, clips: dict[str, bytes], queries: dict[str, MediaHashes]
) -> None:
    _bank(store, "a", clips["original"], settings)
    _bank(store, "b", clips["original"], settings)
    matcher = VideoMatcher(store, settings)
    query = _vpdq(queries["copy"])
    assert {bank for bank, _ in _found(matcher.match(query, _enabled(store)))} == {"a", "b"}

    store.banks.update("b", actor="test", enabled=False)
    assert {bank for bank, _ in _found(matcher.match(query, _enabled(store)))} == {"a"}

    entry_id = next(iter(_found(matcher.match(query, _enabled(store)))))[1]
    store.banks.set_entries_disabled_until(
        "a", [], datetime.now(UTC) + timedelta(hours=1), actor="test", ids=[entry_id]
    )
    assert not matcher.match(query, _enabled(store))[0]
    store.banks.set_entries_disabled_until("a", [], None, actor="test", ids=[entry_id])
    assert matcher.match(query, _enabled(store))[0]

    store.banks.set_entries_enabled("a", [], False, actor="test", ids=[entry_id])
    assert not matcher.match(query, _enabled(store))[0]
    store.banks.set_entries_enabled("a", [], True, actor="test", ids=[entry_id])
    assert matcher.match(query, _enabled(store))[0]

    store.banks.remove_entry_ids("a", [entry_id], actor="test")
    assert not matcher.match(query, _enabled(store))[0]
    assert len(matcher) == 1  # bank b's video is still indexed (b is disabled, not deleted)


def test_videos_added_later_are_found_and_deleted_banks_forgotten(
    store: Store, settings: Settings, clips: dict[str, bytes], queries: dict[str, MediaHashes]
) -> None:
    store.banks.create(BankInfo(name="empty"), actor="test")
    matcher = VideoMatcher(store, settings)
    query = _vpdq(queries["copy"])
    assert matcher.match(query, _enabled(store)) == [[]]
    _bank(store, "later", clips["original"], settings)
    assert {b for b, _ in _found(matcher.match(query, _enabled(store)))} == {"later"}
    store.banks.delete("later", actor="test")
    assert matcher.match(query, _enabled(store)) == [[]]
    assert len(matcher) == 0


def test_a_banks_pdq_threshold_is_its_frame_distance(
    store: Store, settings: Settings, clips: dict[str, bytes], queries: dict[str, MediaHashes]
) -> None:
    _bank(store, "strict", clips["original"], settings)
    store.banks.update("strict", actor="test", pdq_threshold=0)
    matcher = VideoMatcher(store, settings)
    assert matcher.match(_vpdq(queries["copy"]), _enabled(store)) == [[]]
    assert matcher.match(_vpdq(queries["original"]), _enabled(store))[0]


def test_video_entries_hold_vpdq_md5_and_sha256_and_digests_when_not_decodable(
    settings: Settings, clips: dict[str, bytes]
) -> None:
    hashes, records = video_entries(clips["original"], settings, category="c", note="n")
    assert [r.signal_type for r in records] == ["vpdq", "md5", "sha256"]
    assert all(r.category == "c" and r.note == "n" for r in records)
    assert records[0].signal == hashes.vpdq and records[0].signal.startswith("vpdq1:")
    assert hashes.video is not None and hashes.video["sample_fps"] == 10.0
    bank_frames = len(parse_vpdq(records[0].signal).frames)
    assert bank_frames > SECONDS * 2  # denser than a query's one frame a second

    broken = clips["original"][: len(clips["original"]) // 3]
    hashes, records = video_entries(broken, settings)
    assert [r.signal_type for r in records] == ["md5", "sha256"]
    assert hashes.error and hashes.vpdq is None


def test_hash_media_gives_videos_vpdq_and_keeps_gifs_as_photos(clips: dict[str, bytes]) -> None:
    hashes = hash_media(clips["copy"])
    assert hashes.media_type == "video" and hashes.pdq is None
    assert set(hashes.signals()) == {"md5", "sha1", "sha256", "vpdq"}
    shown = hashes.to_json(vpdq_text=True)
    assert shown["vpdq"] == hashes.vpdq and "pdq" not in shown
    assert isinstance(shown["vpdq_text"], str) and shown["vpdq_text"].count("\n") >= SECONDS
    assert hashes.video is not None and hashes.video["width"] == 128

    gif = io.BytesIO()
    Image.fromarray(skdata.astronaut()).save(gif, "GIF")
    photo = hash_media(gif.getvalue())
    assert photo.media_type == "gif" and photo.pdq is not None and photo.vpdq is None


def test_video_settings_are_read_checked_and_give_the_distance_threshold(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        env={"AMPARO_VIDEO_QUERY_SHARE": "0.5", "AMPARO_VIDEO_CLIP": "true"},
        overrides={"home": tmp_path},
    )
    assert settings.video_query_share == 0.5 and settings.video_clip
    assert video_distance_threshold(settings) == 50
    assert video_distance_threshold(Settings()) == 20
    with pytest.raises(ConfigError):
        load_settings(env={"AMPARO_VIDEO_BANK_SHARE": "1.5"}, overrides={"home": tmp_path})
    with pytest.raises(ConfigError):
        load_settings(env={"AMPARO_VIDEO_SAMPLE_FPS": "fast"}, overrides={"home": tmp_path})


def test_entries_stored_as_reference_text_still_match(
    store: Store, settings: Settings, clips: dict[str, bytes], queries: dict[str, MediaHashes]
) -> None:
    store.banks.create(BankInfo(name="text"), actor="test")
    _, records = video_entries(clips["original"], settings)
    text = parse_vpdq(records[0].signal).to_text()
    store.banks.add_entries("text", [EntryRecord("vpdq", text)], actor="test")
    matcher = VideoMatcher(store, settings)
    assert matcher.match(_vpdq(queries["copy"]), _enabled(store))[0]


def _clip_at(photo: NDArray[np.uint8], fps: int, seconds: int) -> bytes:
    """A benign H.264 MP4 at ``fps`` (B-frames and all): a pan across a bundled photo."""
    buf = io.BytesIO()
    frames = fps * seconds
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(frames):
            # the same pan as make_clip, whatever the frame rate
            pixels = _pan(photo, i * SECONDS * FPS // frames, 160, 120)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize(("fps", "seconds"), [(30, 3), (10, 6), (25, 4)])
def test_a_byte_identical_copy_matches_at_distance_0(
    store: Store, settings: Settings, fps: int, seconds: int
) -> None:
    """Issue 12 (point 15): the bank was hashed at 10 frames a second and the query at 1, and
    the bank frames after the query's last sample counted as unmatched: a byte-identical copy
    came out at distance 14. The bank share is now measured on the frames the query's
    sampling picks (the same timestamps), so the copy matches on every frame compared."""
    clip = _clip_at(skdata.astronaut(), fps, seconds)
    _bank(store, "videos", clip, settings)
    query = hash_video_media(clip, sample_fps=settings.video_sample_fps)
    assert query.vpdq is not None
    [[found]] = VideoMatcher(store, settings).match(_vpdq(query), _enabled(store))
    assert found.distance == 0, found.detail
    assert found.detail.query_share == found.detail.bank_share == 1.0
    assert found.detail.query_frames == found.detail.bank_frames == seconds
    # Every query frame has a bank frame at (or within a frame of) its timestamp with the
    # same hash: PDQ distance 0 on every frame compared (as measured for all three rates).
    assert query.vpdq is not None
    bank_video = parse_vpdq(next(iter(store.changes.iter_active_signals("vpdq")))[0][1])
    for frame in parse_vpdq(query.vpdq).frames:
        near = [b for b in bank_video.frames if abs(b.timestamp - frame.timestamp) <= 0.15]
        distances = [bin(int(b.pdq_hex, 16) ^ int(frame.pdq_hex, 16)).count("1") for b in near]
        assert min(distances) == 0, (frame.timestamp, distances)


@pytest.mark.parametrize(
    ("query", "bank", "expected"), [(1.0, 10.0, 10.0), (3.0, 10.0, 12.0), (2.0, 1.0, 2.0)]
)
def test_bank_sampling_keeps_every_frame_a_query_samples(
    tmp_path: Path, query: float, bank: float, expected: float
) -> None:
    settings = load_settings(
        env={},
        overrides={"home": tmp_path, "video_sample_fps": query, "video_bank_sample_fps": bank},
    )
    assert bank_sample_fps(settings) == expected
