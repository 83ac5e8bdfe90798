"""Conformance with the reference vPDQ output (ThreatExchange's six benign clips). Skipped when
../shared/reference is absent. The reference hashes every frame at full resolution; Amparo
reduces frames to a 600 px short side (its canonical PDQ size), which only the 720p doorknob
and the 1080x1080 clip feel."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from amparo.signals.pdq import DEFAULT_MIN_QUALITY, PdqSignal
from amparo.signals.vpdq import VpdqFrames, hash_video, parse_frames
from amparo.signals.vpdq_compare import VideoMatchOptions, compare_videos

pytest.importorskip("av")

REFERENCE = Path(
    os.environ.get(
        "AMPARO_REFERENCE_DIR", Path(__file__).resolve().parents[2].parent / "shared" / "reference"
    )
)
VPDQ = REFERENCE / "vpdq"
pytestmark = [
    pytest.mark.reference,
    pytest.mark.skipif(not (VPDQ / "hashes").is_dir(), reason=f"no reference data at {VPDQ}"),
]
CHAIRS = ("chair-19-sd-bar", "chair-22-sd-grey-bar", "chair-orig-22-sd-bar")
OTHERS = ("doorknob-hd-no-bar", "pattern-sd-grey-bar")


def _reference(name: str) -> VpdqFrames:
    return VpdqFrames(parse_frames((VPDQ / "hashes" / f"{name}.txt").read_text()))


@pytest.mark.parametrize(
    ("name", "sample_fps", "median", "worst"),
    [
        ("pattern-sd-grey-bar", 5.0, 2, 8),
        ("test-padded-dimensions", 5.0, 4, 10),
        ("chair-19-sd-bar", 2.0, 2, 8),
        ("doorknob-hd-no-bar", 10.0, 10, 24),
    ],
)
def test_frame_hashes_are_close_to_the_reference(
    name: str, sample_fps: float, median: int, worst: int
) -> None:
    ours = hash_video(VPDQ / "videos" / f"{name}.mp4", sample_fps=sample_fps, collapse_distance=-1)
    reference = {f.frame_number: f for f in _reference(name).frames}
    distances = []
    for frame in ours.vpdq.frames:
        ref = reference[frame.frame_number]
        assert f"{frame.timestamp:.3f}" == f"{ref.timestamp:.3f}"
        if ref.quality >= DEFAULT_MIN_QUALITY:
            distances.append(PdqSignal.distance(frame.pdq_hex, ref.pdq_hex))
    assert len(ours.vpdq.frames) == pytest.approx(len(reference) * sample_fps / 30, abs=2)
    assert np.median(distances) <= median
    assert max(distances) <= worst


def test_reference_hashes_match_as_expected() -> None:
    """On the reference's every-frame hashes: the chairs match each other; the doorknob and
    the pattern match neither the chairs nor each other."""
    videos = {name: _reference(name) for name in CHAIRS + OTHERS}
    for a in videos:
        for b in videos:
            expected = a == b or (a in CHAIRS and b in CHAIRS)
            assert compare_videos(videos[a], videos[b]).is_match == expected, (a, b)


def test_our_hashes_match_as_expected() -> None:
    """Amparo's own 1-frame-a-second hashes as queries against 10-a-second bank hashes (the
    recommended setting: a query trimmed at any offset still meets a bank frame)."""
    names = CHAIRS + OTHERS
    query = {n: hash_video(VPDQ / "videos" / f"{n}.mp4").vpdq for n in names}
    bank = hash_video(VPDQ / "videos" / "chair-orig-22-sd-bar.mp4", sample_fps=10).vpdq
    options = VideoMatchOptions(bank_coverage_seconds=0.5)
    for a in names:
        assert compare_videos(query[a], bank, options).is_match == (a in CHAIRS), a
    for a in OTHERS:
        for b in OTHERS:
            if a != b:
                assert not compare_videos(query[a], query[b]).is_match
