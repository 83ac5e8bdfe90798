"""vPDQ in hash lists: csv, te and text carry it in the compact one-line form and round-trip
it exactly (cropped frames and duration included); te also reads python-threatexchange's own
vpdq lines (a JSON list of "pdq_hex,quality,timestamp" strings, written here as its
``vpdq_to_json`` writes them); reference text stored in a bank is exported compact.
"""

from __future__ import annotations

import io
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from amparo.banks.formats import detect_format, read_entries, write_entries
from amparo.banks.model import EntryRecord
from amparo.signals.vpdq import VpdqFrame, VpdqFrames, parse_vpdq

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
FAST = settings(max_examples=30, deadline=None)


@st.composite
def videos(draw: st.DrawFn) -> VpdqFrames:
    count = draw(st.integers(1, 6))
    numbers = sorted(draw(st.sets(st.integers(0, 10_000), min_size=count, max_size=count)))
    frames = tuple(
        VpdqFrame(
            number,
            draw(st.integers(0, 100)),
            draw(st.text("0123456789abcdef", min_size=64, max_size=64)),
            number / 10,
        )
        for number in numbers
    )
    cropped = tuple(
        VpdqFrame(
            f.frame_number,
            90,
            draw(st.text("0123456789abcdef", min_size=64, max_size=64)),
            f.timestamp,
        )
        for f in frames
        if draw(st.booleans())
    )
    duration = draw(st.one_of(st.none(), st.floats(0, 10_000, allow_nan=False)))
    return VpdqFrames(frames, cropped, duration)


def _entries(video: VpdqFrames) -> list[EntryRecord]:
    return [
        EntryRecord("vpdq", video.to_compact(), category="c", tags=["a", "b"], source_id="s1"),
        EntryRecord("md5", MD5),
        EntryRecord("pdq", PDQ),
    ]


def _round_trip(fmt: str, entries: list[EntryRecord], **options: Any) -> list[EntryRecord]:
    buffer = io.StringIO()
    assert write_entries(buffer, fmt, entries) == len(entries)
    buffer.seek(0)
    result = read_entries(buffer, fmt, strict=True, **options)
    assert result.problems == [] and result.warnings == []
    return result.entries


@FAST
@given(videos())
def test_csv_round_trips_vpdq_with_its_metadata(video: VpdqFrames) -> None:
    entries = _entries(video)
    assert _round_trip("csv", entries) == entries


@FAST
@given(videos())
def test_te_round_trips_vpdq_types_and_values(video: VpdqFrames) -> None:
    entries = _entries(video)
    back = _round_trip("te", entries)
    assert [(e.signal_type, e.signal) for e in back] == [(e.signal_type, e.signal) for e in entries]
    assert parse_vpdq(back[0].signal) == video


@FAST
@given(st.lists(videos(), min_size=1, max_size=3))
def test_text_round_trips_vpdq_when_told_the_type(found: list[VpdqFrames]) -> None:
    entries = [EntryRecord("vpdq", v.to_compact()) for v in found]
    assert _round_trip("text", entries, signal_type="vpdq") == entries


def _te_json(frames: list[tuple[str, int, float]]) -> str:
    """What python-threatexchange's ``vpdq_to_json`` writes (its timestamp keeps three
    significant digits: ``f"{t:.3}"``)."""
    return json.dumps([f"{h},{q},{t:.3}" for h, q, t in frames])


def test_te_reads_threatexchanges_vpdq_lines() -> None:
    other = "e" * 64
    signal = _te_json([(PDQ, 100, 0.0), (other, 45, 1.0), (PDQ.upper(), 90, 12.345)])
    text = f"vpdq {signal}\nvpdq {signal} collab-name 2024-01-01\nvideo_md5 {MD5}\n"
    result = read_entries(io.StringIO(text), "te", strict=True)
    assert [e.signal_type for e in result.entries] == ["vpdq", "vpdq", "md5"]
    video = parse_vpdq(result.entries[0].signal)
    assert result.entries[0].signal.startswith("vpdq1:")
    assert [(f.frame_number, f.quality, f.pdq_hex, f.timestamp) for f in video.frames] == [
        (0, 100, PDQ, 0.0),
        (1, 45, other, 1.0),
        (2, 90, PDQ, 12.3),
    ]
    assert result.entries[1].signal == result.entries[0].signal
    assert detect_format(text.encode()) == "te"


def test_bad_vpdq_lines_are_reported_by_line_number() -> None:
    text = (
        f"vpdq {_te_json([(PDQ, 100, 0.0)])}\n"
        'vpdq ["nothex,100,0.0"]\n'
        "vpdq [not json\n"
        "vpdq vpdq1:AAAA\n"
        f'vpdq ["{PDQ},101,0.0"]\n'
    )
    result = read_entries(io.StringIO(text), "te")
    assert len(result.entries) == 1
    assert [number for number, _ in result.problems] == [2, 3, 4, 5]


def test_reference_text_in_a_bank_is_exported_compact_and_reads_back() -> None:
    video = VpdqFrames((VpdqFrame(0, 100, PDQ, 0.0), VpdqFrame(30, 80, "e" * 64, 1.0)))
    stored = [EntryRecord("vpdq", video.to_text())]
    for fmt in ("csv", "te"):
        buffer = io.StringIO()
        write_entries(buffer, fmt, stored)
        assert "vpdq1:" in buffer.getvalue()
        buffer.seek(0)
        (back,) = read_entries(buffer, fmt, strict=True).entries
        assert back.signal == video.to_compact()


def test_a_long_video_fits_in_one_csv_cell() -> None:
    frames = tuple(VpdqFrame(i, 100, PDQ, i / 10) for i in range(36_000))  # an hour at 10 fps
    entries = [EntryRecord("vpdq", VpdqFrames(frames).to_compact())]
    assert len(entries[0].signal) > 131_072  # past csv's default cell limit
    assert _round_trip("csv", entries) == entries
