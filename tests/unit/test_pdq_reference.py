"""Conformance with the PDQ reference vectors published with facebook/ThreatExchange.

The vectors live beside the checkout (``../shared/reference``, or ``AMPARO_REFERENCE_DIR``) on
developer and CI machines and are never copied into the repository; without them these tests
skip.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from amparo.hashing import hash_media
from amparo.signals.pdq import DEFAULT_THRESHOLD, PdqSignal

# Upstream's own rule: two implementations agree within 10 bits when quality >= 80.
IMPLEMENTATION_TOLERANCE = 10


def _reference_dir() -> Path:
    configured = os.environ.get("AMPARO_REFERENCE_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).parents[2].parent / "shared" / "reference"


PDQ_DIR = _reference_dir() / "pdq"

pytestmark = [
    pytest.mark.reference,
    pytest.mark.skipif(not PDQ_DIR.is_dir(), reason=f"reference vectors not found at {PDQ_DIR}"),
]


def _images() -> dict[str, Path]:
    return {path.name: path for path in sorted(PDQ_DIR.glob("*/*.jpg"))}


def _published() -> list[tuple[str, str, str]]:
    """(source, file name, expected hash) for every published hash of an image we have."""
    if not PDQ_DIR.is_dir():
        return []
    names = _images()
    expected: list[tuple[str, str, str]] = []
    with (PDQ_DIR / "PDQMD5TestData.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            name = row["FilePath"].rsplit("/", 1)[-1]
            if name in names:
                expected.append(("PDQMD5TestData.csv", name, row["Hash"].strip()))
    for line in (PDQ_DIR / "expected-pdq-from-readmes.tsv").read_text().splitlines():
        if not line.strip():
            continue
        source, rest = line.split("\t", 1)
        fields = rest.split(",")
        name = fields[-1].rsplit("/", 1)[-1]
        if name in names:
            expected.append((source, name, fields[0].strip()))
    return expected


_HASHES: dict[str, tuple[str, list[str]]] = {}


def _hashes(name: str) -> tuple[str, list[str]]:
    """PDQ and the eight dihedral PDQ hashes of a reference image, computed once."""
    if name not in _HASHES:
        result = hash_media(_images()[name].read_bytes(), dihedral=True)
        assert result.pdq is not None, result.error
        assert result.pdq_quality is not None and result.pdq_quality >= 80
        _HASHES[name] = (result.pdq, [result.pdq, *result.pdq_dihedral])
    return _HASHES[name]


def test_reference_vectors_are_complete() -> None:
    expected = _published()
    assert len({name for _, name, _ in expected}) == len(_images()) == 20


@pytest.mark.parametrize(("source", "name", "expected"), _published())
def test_pdq_agrees_with_published_hash(source: str, name: str, expected: str) -> None:
    pdq, _ = _hashes(name)
    distance = PdqSignal.distance(pdq, expected)
    assert distance <= IMPLEMENTATION_TOLERANCE, f"{name} vs {source}: {distance} bits"


@pytest.mark.parametrize("name", sorted(p.name for p in (PDQ_DIR / "bridge-mods").glob("*.jpg")))
def test_every_bridge_modification_matches_the_original(name: str) -> None:
    original, _ = _hashes("aaa-orig.jpg")
    pdq, _ = _hashes(name)
    assert PdqSignal.distance(pdq, original) <= DEFAULT_THRESHOLD


DIHEDRAL_COPIES = sorted(p.name for p in (PDQ_DIR / "dih").glob("*.jpg"))


@pytest.mark.parametrize("name", DIHEDRAL_COPIES)
def test_every_dihedral_copy_matches_with_dihedral_hashes(name: str) -> None:
    original, original_variants = _hashes("bridge-1-original.jpg")
    pdq, variants = _hashes(name)
    assert min(PdqSignal.distance(v, original) for v in variants) <= DEFAULT_THRESHOLD
    assert min(PdqSignal.distance(v, pdq) for v in original_variants) <= DEFAULT_THRESHOLD


@pytest.mark.parametrize("name", [n for n in DIHEDRAL_COPIES if "original" not in n])
def test_plain_pdq_does_not_match_rotations_and_flips(name: str) -> None:
    original, _ = _hashes("bridge-1-original.jpg")
    pdq, _ = _hashes(name)
    assert PdqSignal.distance(pdq, original) > DEFAULT_THRESHOLD
