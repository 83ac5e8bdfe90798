"""Matching through the application core, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image
from skimage import data

from amparo import Amparo, BankInfo, EntryRecord
from amparo.config import Settings


def _jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _flip_bits(hex_hash: str, n: int) -> str:
    value = int(hex_hash, 16)
    for bit in range(n):
        value ^= 1 << (bit * 7 % 256)
    return f"{value:064x}"


@pytest.fixture
def amparo(settings: Settings) -> Amparo:
    app = Amparo(settings)
    yield app
    app.close()


BASE = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def test_pdq_threshold_is_per_bank(amparo: Amparo) -> None:
    amparo.banks.create(BankInfo(name="strict", pdq_threshold=10))
    amparo.banks.create(BankInfo(name="loose"))
    for bank in ("strict", "loose"):
        amparo.banks.add_entries(bank, [EntryRecord("pdq", BASE, category="c1")])
    near, far = _flip_bits(BASE, 8), _flip_bits(BASE, 20)
    near_matches, far_matches = amparo.checks.match_signals([("pdq", near), ("pdq", far)])
    assert {(m.bank, m.distance) for m in near_matches} == {("strict", 8), ("loose", 8)}
    assert {(m.bank, m.distance) for m in far_matches} == {("loose", 20)}
    assert far_matches[0].category == "c1"
    amparo.banks.update("loose", pdq_threshold=19)
    assert amparo.checks.match_signals([("pdq", far)]) == [[]]


def test_changes_are_visible_to_the_next_lookup(amparo: Amparo) -> None:
    amparo.banks.create(BankInfo(name="b"))
    assert amparo.checks.match_signals([("pdq", BASE)]) == [[]]
    amparo.banks.add_entries("b", [EntryRecord("pdq", BASE)])
    assert len(amparo.checks.match_signals([("pdq", BASE)])[0]) == 1
    amparo.banks.set_signals_enabled("b", [("pdq", BASE)], False)
    assert amparo.checks.match_signals([("pdq", BASE)]) == [[]]
    amparo.banks.set_signals_enabled("b", [("pdq", BASE)], True)
    amparo.banks.update("b", enabled=False)
    assert amparo.checks.match_signals([("pdq", BASE)]) == [[]]
    amparo.banks.update("b", enabled=True)
    amparo.banks.remove_signals("b", [("pdq", BASE)])
    assert amparo.checks.match_signals([("pdq", BASE)]) == [[]]


def test_other_process_changes_are_seen(amparo: Amparo, settings: Settings) -> None:
    amparo.banks.create(BankInfo(name="b"))
    assert amparo.checks.match_signals([("md5", "0" * 32), ("pdq", BASE)]) == [[], []]
    other = Amparo(settings)
    other.banks.add_entries("b", [EntryRecord("pdq", BASE), EntryRecord("md5", "0" * 32)])
    other.close()
    # Another process's changes show within index_refresh_seconds (0.5 s), never over 1 s.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        found = [len(m) for m in amparo.checks.match_signals([("md5", "0" * 32), ("pdq", BASE)])]
        if found == [1, 1]:
            break
        time.sleep(0.05)
    assert found == [1, 1]


def test_bank_filter_and_deleted_bank(amparo: Amparo) -> None:
    for name in ("a", "b"):
        amparo.banks.create(BankInfo(name=name))
        amparo.banks.add_entries(name, [EntryRecord("pdq", BASE)])
    assert {m.bank for m in amparo.checks.match_signals([("pdq", BASE)], ["b"])[0]} == {"b"}
    amparo.banks.delete("a")
    assert {m.bank for m in amparo.checks.match_signals([("pdq", BASE)])[0]} == {"b"}


def test_photo_matches_and_low_quality_is_reported(amparo: Amparo) -> None:
    amparo.banks.create(BankInfo(name="b"))
    photo = data.astronaut()
    amparo.banks.add_media("b", _jpeg(photo), category="benign-test")
    copy = _jpeg(np.asarray(Image.fromarray(photo).resize((256, 256))), quality=40)
    result = amparo.checks.match_hashes([amparo.checks.hash_bytes(copy)])[0]
    assert [m.signal_type for m in result.matches] == ["pdq"]
    assert result.matches[0].distance <= 31

    flat = _jpeg(np.full((300, 300, 3), 128, dtype=np.uint8))
    hashes = amparo.checks.hash_bytes(flat)
    assert hashes.pdq_quality is not None and hashes.pdq_quality < 50
    result = amparo.checks.match_hashes([hashes])[0]
    assert result.pdq_skipped and "quality" in result.pdq_skipped


def test_dihedral_matching_is_per_bank_opt_in(amparo: Amparo) -> None:
    photo = data.chelsea()
    amparo.banks.create(BankInfo(name="plain"))
    amparo.banks.create(BankInfo(name="turned", dihedral=True))
    for bank in ("plain", "turned"):
        amparo.banks.add_media(bank, _jpeg(photo))
    rotated = _jpeg(np.ascontiguousarray(np.rot90(photo)))
    banks = None
    hashes = amparo.checks.hash_bytes(rotated, dihedral=amparo.checks.wants_dihedral(banks))
    matches = amparo.checks.match_hashes([hashes], banks)[0].matches
    assert {m.bank for m in matches} == {"turned"}
    assert matches[0].transform is not None
