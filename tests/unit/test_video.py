"""Video decoding: containers, sampling by timestamp, rotation, sources (path, bytes, file)
and the right error, quickly, for empty, garbage, truncated, audio-only and oversized input.
Every video is generated here with PyAV from synthetic frames."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from amparo.errors import CorruptMediaError, MediaTooLargeError, UnsupportedMediaError
from amparo.media.borders import detect_borders
from amparo.media.video import VideoLimits, open_video, sample_frames

av = pytest.importorskip("av")


def _frame(i: int, width: int, height: int) -> NDArray[np.uint8]:
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([(x * 4 + i * 9) % 256, (y * 4) % 256, (x + y + i * 5) % 256], axis=2)
    return pixels.astype(np.uint8)


def make_video(
    fmt: str = "mp4",
    codec: str = "libx264",
    *,
    seconds: float = 3.0,
    fps: int = 10,
    width: int = 64,
    height: int = 48,
    rotation: int = 0,
) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(_frame(i, width, height), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "codec"),
    [
        ("mp4", "libx264"),
        ("mov", "libx264"),
        ("matroska", "libx264"),
        ("webm", "libvpx"),
        ("avi", "mpeg4"),
        ("mpegts", "libx264"),
        ("gif", "gif"),
    ],
)
def test_containers_decode_and_sample_one_frame_a_second(fmt: str, codec: str) -> None:
    info, frames = sample_frames(make_video(fmt, codec))
    assert [round(f.timestamp) for f in frames] == [0, 1, 2]
    assert all(f.luma.shape == (48, 64) and f.luma.dtype == np.uint8 for f in frames)
    assert info.width == 64 and info.height == 48


def test_every_frame_and_custom_rate() -> None:
    data = make_video(seconds=2.0)
    _, every = sample_frames(data, sample_fps=None)
    assert [f.frame_number for f in every] == list(range(20))
    _, four = sample_frames(data, sample_fps=4)
    assert [f.frame_number for f in four] == [0, 3, 5, 8, 10, 13, 15, 18]
    assert four[1].timestamp == pytest.approx(0.3)


def test_path_bytes_and_file_object_agree(tmp_path: Path) -> None:
    data = make_video(seconds=1.0)
    path = tmp_path / "clip.bin"
    path.write_bytes(data)
    lumas = [sample_frames(src)[1][0].luma for src in (data, path, str(path), io.BytesIO(data))]
    assert all(np.array_equal(lumas[0], other) for other in lumas[1:])


def test_large_frames_are_reduced_to_the_canonical_short_side() -> None:
    _, frames = sample_frames(make_video(seconds=1.0, width=1280, height=720))
    assert frames[0].luma.shape == (600, 1067)


@pytest.mark.parametrize(("rotation", "shape"), [(90, (64, 48)), (-90, (64, 48)), (180, (48, 64))])
def test_rotation_metadata_is_applied(rotation: int, shape: tuple[int, int]) -> None:
    data = make_video(seconds=1.0, rotation=rotation)
    plain = sample_frames(make_video(seconds=1.0))[1][0].luma
    with open_video(data) as video:
        luma = next(iter(video.frames())).luma
        assert video.info.rotation == rotation
        assert (video.info.height, video.info.width) == shape
    assert luma.shape == shape
    assert np.array_equal(luma, np.rot90(plain, k=rotation // 90))


def test_empty_garbage_and_audio_only_are_reported_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(CorruptMediaError):
        sample_frames(b"")
    with pytest.raises(UnsupportedMediaError):
        sample_frames(np.random.default_rng(1).bytes(50_000))
    audio = io.BytesIO()
    with av.open(audio, "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        samples = np.zeros((1, 8000), dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.raises(UnsupportedMediaError, match="no video stream"):
        sample_frames(audio.getvalue())
    assert time.monotonic() - started < 5


# MPEG-TS is left out: it is a stream format with no declared length, so a cut copy is a valid
# shorter stream (it decodes to the frames before the cut).
@pytest.mark.parametrize("fmt", ["mp4", "mov", "matroska"])
def test_truncated_video_is_corrupt(fmt: str) -> None:
    data = make_video(fmt, seconds=6.0, width=160, height=120)
    with pytest.raises(CorruptMediaError):
        sample_frames(data[: len(data) // 3])


def test_limits() -> None:
    data = make_video(seconds=3.0, width=160, height=120)
    with pytest.raises(MediaTooLargeError, match="bytes"):
        sample_frames(data, limits=VideoLimits(max_file_size=1000))
    with pytest.raises(MediaTooLargeError, match="pixels"):
        sample_frames(data, limits=VideoLimits(max_pixels=100 * 100))
    with pytest.raises(MediaTooLargeError, match="lasts"):
        sample_frames(data, limits=VideoLimits(max_duration_seconds=1.0))
    with pytest.raises(MediaTooLargeError, match="longer than"):
        sample_frames(data, limits=VideoLimits(timeout_seconds=0.0))


def test_border_detection_finds_bars_and_ignores_plain_frames() -> None:
    picture = _frame(0, 200, 100)[:, :, 0]
    barred = np.zeros((160, 200), dtype=np.uint8)
    barred[30:130] = picture
    borders = detect_borders(barred)
    assert (borders.top, borders.bottom, borders.left, borders.right) == (30, 30, 0, 0)
    assert np.array_equal(borders.crop(barred), picture)
    assert not detect_borders(picture)
    assert not detect_borders(np.full((100, 100), 17, dtype=np.uint8))
    ramp = np.tile(np.linspace(0, 40, 100).astype(np.uint8), (100, 1))
    assert not detect_borders(ramp)


def test_sparse_sampling_skips_non_reference_frames_and_numbers_by_time() -> None:
    """At 1 sample a second of 30 fps H.264 (with B-frames), decoding skips frames nothing
    refers to; each sample is still numbered as the frame it is, within a few frames of its
    time, and its pixels are exactly that frame's."""
    data = make_video(seconds=4, fps=30, width=128, height=96)
    with open_video(data) as video:
        every = {f.frame_number: f for f in video.frames(sample_fps=None, max_short_side=None)}
    with open_video(data) as video:
        sparse = list(video.frames(sample_fps=1.0, max_short_side=None))
    every_frame = VideoLimits(reference_frames_only=False)
    with open_video(data, limits=every_frame) as video:
        plain = list(video.frames(sample_fps=1.0, max_short_side=None))
    assert [f.frame_number for f in plain] == [0, 30, 60, 90]
    assert len(sparse) == 4
    for sample, second in zip(sparse, range(4), strict=True):
        assert 30 * second <= sample.frame_number <= 30 * second + 4
        full = every[sample.frame_number]
        assert sample.timestamp == pytest.approx(full.timestamp)
        assert np.array_equal(sample.luma, full.luma)
    assert any(f.frame_number % 30 for f in sparse[1:])  # B-frames were skipped
    # Opt-in: without the deblocking filter too, the same frames, a few grey levels apart.
    with open_video(data, limits=VideoLimits(skip_deblocking=True)) as video:
        rough = list(video.frames(sample_fps=1.0, max_short_side=None))
    assert [f.frame_number for f in rough] == [f.frame_number for f in sparse]
    for fast, exact in zip(rough, sparse, strict=True):
        assert np.abs(fast.luma.astype(int) - exact.luma.astype(int)).mean() < 4.0


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    bars=st.tuples(*(st.integers(0, 30) for _ in range(4))),
    noise=st.sampled_from([0, 1, 3, 8, 40]),
)
def test_the_border_shortcut_never_changes_the_answer(
    seed: int, bars: tuple[int, int, int, int], noise: int
) -> None:
    """Frames whose four outermost lines are all busy skip the full statistics; on any frame
    (bars of any size, flat or noisy edges) the answer is what the full statistics give."""
    from amparo.media.borders import _measure_borders

    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, size=(90, 120)).astype(np.int16)
    top, bottom, left, right = bars
    level = int(rng.integers(0, 256))
    for region in (frame[:top], frame[90 - bottom :], frame[:, :left], frame[:, 120 - right :]):
        region[...] = level + rng.integers(-noise, noise + 1, size=region.shape)
    luma = np.clip(frame, 0, 255).astype(np.uint8)
    assert detect_borders(luma) == _measure_borders(luma)
