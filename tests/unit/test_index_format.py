"""A damaged segment file or manifest is reported with a rebuild hint, never used."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from amparo.errors import IndexCorruptError
from amparo.index import PdqSegment, SegmentedDigestTable, SegmentedPdqIndex
from amparo.index.live import MANIFEST


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    index = SegmentedPdqIndex.open(tmp_path, create=True)
    index.apply(np.arange(500), rng.integers(0, 256, (500, 32), dtype=np.uint8), checkpoint=3)
    index.compact()
    return tmp_path


def segment_path(directory: Path) -> Path:
    return next(directory.glob("pdq-*.seg"))


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_round_trip_opens_without_reading_the_payload(saved: Path) -> None:
    index = SegmentedPdqIndex.open(saved, verify=True)
    assert len(index) == 500 and index.checkpoint == 3
    index.verify()


@pytest.mark.parametrize("offset", [0, 9, 20, 60])
def test_damaged_header_is_reported(saved: Path, offset: int) -> None:
    flip_byte(segment_path(saved), offset)
    with pytest.raises(IndexCorruptError) as err:
        SegmentedPdqIndex.open(saved)
    assert "amparo index rebuild" in str(err.value)


def test_damaged_payload_is_caught_by_verify(saved: Path) -> None:
    path = segment_path(saved)
    flip_byte(path, path.stat().st_size - 100)
    index = SegmentedPdqIndex.open(saved)  # cheap open checks the header only
    with pytest.raises(IndexCorruptError, match="checksum"):
        index.verify()
    with pytest.raises(IndexCorruptError):
        SegmentedPdqIndex.open(saved, verify=True)


@pytest.mark.parametrize("keep", [0, 10, 47, 200, -1])
def test_truncated_file_is_reported(saved: Path, keep: int) -> None:
    path = segment_path(saved)
    size = path.stat().st_size
    os.truncate(path, keep if keep >= 0 else size - 1)
    with pytest.raises(IndexCorruptError):
        SegmentedPdqIndex.open(saved)


def test_wrong_kind_and_foreign_file_are_reported(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(IndexCorruptError):
        SegmentedDigestTable.open("md5", saved)
    foreign = tmp_path / "foreign.seg"
    foreign.write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(IndexCorruptError, match="magic"):
        PdqSegment.open(foreign)


@pytest.mark.parametrize(
    "text", ["{not json", '{"format": "other"}', '{"format": "amparo-index", "version": 1}']
)
def test_damaged_manifest_is_reported(saved: Path, text: str) -> None:
    (saved / MANIFEST).write_text(text)
    with pytest.raises(IndexCorruptError, match="manifest"):
        SegmentedPdqIndex.open(saved)


def test_crash_while_writing_leaves_the_index_in_use_intact(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {p.name: p.read_bytes() for p in saved.iterdir()}
    index = SegmentedPdqIndex.open(saved)
    index.add(np.array([10_000]), np.zeros((1, 32), np.uint8))

    def crash(src: object, dst: object) -> None:
        raise OSError("disk died")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        index.compact()
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before  # no temp files left
    assert len(SegmentedPdqIndex.open(saved, verify=True)) == 500
    assert len(index) == 501  # the live index keeps working
    index.compact()
    assert len(SegmentedPdqIndex.open(saved)) == 501


def test_missing_directory_without_create_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SegmentedPdqIndex.open(tmp_path / "nowhere")


def test_manifest_naming_a_missing_segment_is_reported(saved: Path) -> None:
    segment_path(saved).unlink()
    with pytest.raises(IndexCorruptError, match="missing segment"):
        SegmentedPdqIndex.open(saved)
