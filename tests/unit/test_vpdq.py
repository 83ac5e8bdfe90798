"""vPDQ: text and compact forms, and matching a user would notice — a re-encoded, resized,
letterboxed or trimmed copy of a video is found, an unrelated video is not — directly and
through a shared PDQ index. Videos are generated here from scikit-image's bundled photos."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from amparo.errors import InvalidSignalError
from amparo.index import BruteForcePdqIndex
from amparo.index.video import bank_entries, matches_from_hits
from amparo.signals.base import get_signal_type
from amparo.signals.vpdq import (
    VpdqFrame,
    VpdqFrames,
    VpdqSignal,
    collapse_frames,
    frames_from_compact,
    hash_video,
    parse_frames,
)
from amparo.signals.vpdq_compare import VideoMatchOptions, compare_videos, frame_rows

av = pytest.importorskip("av")
skdata = pytest.importorskip("skimage.data")

SECONDS = 8
FPS = 10


def _pan(photo: NDArray[np.uint8], i: int, width: int, height: int) -> NDArray[np.uint8]:
    """Frame ``i`` of a slow pan and zoom across ``photo``."""
    ph, pw = photo.shape[:2]
    t = i / (SECONDS * FPS)
    cw, ch = int(pw * (0.6 - 0.15 * t)), int(ph * (0.6 - 0.15 * t))
    x, y = int((pw - cw) * t), int((ph - ch) * (0.5 + 0.4 * np.sin(3 * t)) * 0.9)
    window = Image.fromarray(photo[y : y + ch, x : x + cw])
    return np.asarray(window.resize((width, height), Image.Resampling.BILINEAR))


def make_clip(
    photo: NDArray[np.uint8],
    *,
    width: int = 320,
    height: int = 240,
    crf: int = 23,
    start: int = 0,
    stop: int = SECONDS * FPS,
    bars: tuple[int, int] = (0, 0),
) -> bytes:
    """H.264 MP4 of frames ``start..stop`` of the pan; ``bars`` adds black bars
    (top/bottom, left/right) around a picture of ``width`` x ``height``."""
    bar_v, bar_h = bars
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"crf": str(crf)})
        stream.width, stream.height = width + 2 * bar_h, height + 2 * bar_v
        stream.pix_fmt = "yuv420p"
        for n, i in enumerate(range(start, stop)):
            canvas = np.zeros((stream.height, stream.width, 3), dtype=np.uint8)
            canvas[bar_v : bar_v + height, bar_h : bar_h + width] = _pan(photo, i, width, height)
            frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            frame.pts = n
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


@pytest.fixture(scope="module")
def videos() -> dict[str, VpdqFrames]:
    astronaut, coffee = skdata.astronaut(), skdata.coffee()
    clips: dict[str, Callable[[], bytes]] = {
        "original": lambda: make_clip(astronaut),
        "reencoded": lambda: make_clip(astronaut, width=256, height=192, crf=36),
        "letterboxed": lambda: make_clip(astronaut, bars=(40, 0)),
        "pillarboxed": lambda: make_clip(astronaut, width=240, height=240, bars=(0, 40)),
        "second_half": lambda: make_clip(astronaut, start=SECONDS * FPS // 2),
        "unrelated": lambda: make_clip(coffee),
    }
    return {name: hash_video(make()).vpdq for name, make in clips.items()}


def test_transformed_copies_match_and_unrelated_does_not(videos: dict[str, VpdqFrames]) -> None:
    original = videos["original"]
    assert len(original.frames) == SECONDS
    for name in ("reencoded", "letterboxed"):
        result = compare_videos(videos[name], original)
        assert result.is_match, (name, result)
    unrelated = compare_videos(videos["unrelated"], original)
    assert not unrelated.is_match
    assert unrelated.query_share == 0.0


def test_borders_are_what_lets_a_letterboxed_copy_match(videos: dict[str, VpdqFrames]) -> None:
    letterboxed = videos["letterboxed"]
    assert len(letterboxed.cropped) == len(letterboxed.frames)
    assert not videos["original"].cropped
    uncropped = VpdqFrames(letterboxed.frames, (), letterboxed.duration_seconds)
    assert not compare_videos(uncropped, videos["original"]).is_match
    # Either side may be the barred one: a barred bank video matches a plain query.
    assert compare_videos(videos["original"], letterboxed).is_match


def test_trimmed_half_matches_in_clip_mode_only(videos: dict[str, VpdqFrames]) -> None:
    half, original = videos["second_half"], videos["original"]
    strict = compare_videos(half, original)
    assert strict.query_share == 1.0
    assert 0.4 <= strict.bank_share <= 0.6
    assert not strict.is_match
    clip = compare_videos(half, original, VideoMatchOptions(clip=True))
    assert clip.is_match
    ((start, end),) = [(r.start, r.end) for r in clip.bank_ranges]
    assert start == pytest.approx(SECONDS / 2) and end == pytest.approx(SECONDS)


def test_index_lookup_gives_the_same_answer(videos: dict[str, VpdqFrames]) -> None:
    bank = {10: videos["original"], 20: videos["unrelated"], 30: videos["pillarboxed"]}
    ids, hashes, mapping = bank_entries(bank, first_entry_id=1000)
    index = BruteForcePdqIndex()
    index.add(ids, hashes)
    for name in ("reencoded", "letterboxed", "unrelated"):
        query = videos[name]
        rows, slots = frame_rows(query)
        results = matches_from_hits(query, slots, index.search(rows, 31), mapping, bank)
        direct = {vid: compare_videos(query, frames, video_id=vid) for vid, frames in bank.items()}
        for result in results:
            assert result == direct[result.video_id]
        matched = {r.video_id for r in results if r.is_match}
        assert matched == {vid for vid, r in direct.items() if r.is_match}
        assert (10 in matched) == (name != "unrelated")
        assert (20 in matched) == (name == "unrelated")


def test_text_form_round_trips_in_the_reference_format() -> None:
    text = VpdqSignal.examples[0]
    frames = parse_frames(text)
    assert frames[1] == VpdqFrame(30, 100, frames[1].pdq_hex, 1.0)
    assert VpdqSignal.normalize(text.upper().replace("\n", "\r\n")) == text
    assert get_signal_type("vpdq") is VpdqSignal
    assert VpdqSignal.distance(text, text) == 0
    assert VpdqSignal.distance(text, VpdqSignal.examples[1]) == 100


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0,100,abc,0.000",
        "0,101,e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,0.000",
        "0,100,e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,nan",
        "0,100,e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c",
        "vpdq1:AAAA",
    ],
)
def test_invalid_text_is_refused(bad: str) -> None:
    with pytest.raises(InvalidSignalError):
        VpdqSignal.normalize(bad)


def test_compact_form_carries_cropped_frames(videos: dict[str, VpdqFrames]) -> None:
    value = videos["letterboxed"]
    compact = value.to_compact()
    assert "\n" not in compact
    assert frames_from_compact(compact) == value
    assert VpdqSignal.normalize(compact) == value.to_text()


def test_collapse_keeps_the_first_of_near_identical_frames() -> None:
    a = "0" * 64
    b = "0" * 63 + "3"  # 2 bits from a
    c = "f" * 64
    frames = [VpdqFrame(i, 100, h, i / 10) for i, h in enumerate([a, b, a, c, c])]
    assert [f.frame_number for f in collapse_frames(frames, 4)] == [0, 3]
    assert len(collapse_frames(frames, -1)) == 5
