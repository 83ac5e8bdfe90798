"""A mirrored copy of a known photo is found in every bank (``match_mirrored``), reported as
found ``dihedral`` through ``flipx``; rotations only in banks with ``dihedral``; nothing of
the kind once ``match_mirrored`` is off. Rules can tell such matches apart (``paths``).

The queries are built here from ``pdq_dihedral_from_pixels`` (what hashing uses), with the
mirror as ``pdq_mirror`` (what hashing will fill) or only in ``pdq_dihedral``. In pdqhash's
names (``DIHEDRAL_NAMES``) a left-right mirror is ``flipy`` (flipped about the vertical axis);
``flipx`` is upside down (checked below)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageOps
from skimage import data

from amparo import Amparo, BankInfo, EntryRecord
from amparo.actions import Rule
from amparo.config import Settings
from amparo.events import MatchedContent, Source
from amparo.matching import MIRROR, Match, Query
from amparo.review.model import match_of
from amparo.signals.pdq import DIHEDRAL_NAMES, PdqSignal, pdq_dihedral_from_pixels

LEFT_RIGHT = DIHEDRAL_NAMES.index("flipy")
"""Where the hash of the left-right mirrored picture is in ``pdq_dihedral_from_pixels``."""


def _hashes(image: Image.Image) -> tuple[list[str], int]:
    return pdq_dihedral_from_pixels(np.ascontiguousarray(np.asarray(image.convert("RGB"))))


def _query(image: Image.Image, *, only_mirror: bool = False) -> Query:
    hashes, quality = _hashes(image)
    if only_mirror:
        return Query({"pdq": hashes[0]}, pdq_quality=quality, pdq_mirror=hashes[LEFT_RIGHT])
    return Query({"pdq": hashes[0]}, pdq_quality=quality, pdq_dihedral=hashes[1:])


@pytest.fixture
def photo() -> Image.Image:
    return Image.fromarray(data.astronaut())


def _core(settings: Settings, photo: Image.Image, **changes: object) -> Iterator[Amparo]:
    amparo = Amparo(replace(settings, **changes))
    try:
        amparo.banks.create(BankInfo(name="plainbank"))  # no dihedral
        original = _hashes(photo)[0][0]
        amparo.banks.add_entries("plainbank", [EntryRecord("pdq", original, category="A1")])
        yield amparo
    finally:
        amparo.close()


@pytest.fixture
def amparo(sqlite_settings: Settings, photo: Image.Image) -> Iterator[Amparo]:
    yield from _core(sqlite_settings, photo)


@pytest.fixture
def strict(sqlite_settings: Settings, photo: Image.Image) -> Iterator[Amparo]:
    yield from _core(sqlite_settings, photo, match_mirrored=False)


def test_the_mirror_is_not_found_plainly_and_pdqhash_calls_it_flipy(photo: Image.Image) -> None:
    original = _hashes(photo)[0][0]
    mirrored = _hashes(ImageOps.mirror(photo))[0]
    upside_down = _hashes(ImageOps.flip(photo))[0]
    assert PdqSignal.distance(original, mirrored[0]) > 31  # only the mirror finds it
    assert PdqSignal.distance(original, mirrored[LEFT_RIGHT]) <= 31
    assert PdqSignal.distance(original, upside_down[DIHEDRAL_NAMES.index("flipx")]) <= 31


@pytest.mark.parametrize("only_mirror", [False, True])
def test_a_mirrored_copy_matches_a_bank_without_dihedral(
    amparo: Amparo, photo: Image.Image, only_mirror: bool
) -> None:
    assert amparo.settings.match_mirrored  # the default
    query = _query(ImageOps.mirror(photo), only_mirror=only_mirror)
    [result] = amparo.matcher.match([query])
    [match] = result.matches
    assert (match.bank, match.category, match.path, match.transform, match.variant) == (
        "plainbank",
        "A1",
        "dihedral",
        MIRROR,
        None,
    )
    assert match.distance <= 31
    assert match.to_json()["path"] == "dihedral" and "variant" not in match.to_json()
    # A reviewer's stored copy keeps how it was found.
    assert match_of(match.to_json()) == match


def test_the_original_itself_is_found_plain(amparo: Amparo, photo: Image.Image) -> None:
    [result] = amparo.matcher.match([_query(photo)])
    assert [(m.path, m.transform, m.distance) for m in result.matches] == [("plain", None, 0)]


def test_rotations_need_a_dihedral_bank(amparo: Amparo, photo: Image.Image) -> None:
    rotated = _query(photo.rotate(90, expand=True))
    assert amparo.matcher.match([rotated])[0].matches == []
    amparo.banks.update("plainbank", dihedral=True)
    [match] = amparo.matcher.match([rotated])[0].matches
    assert match.path == "dihedral" and match.transform == "rotate270"


@pytest.mark.parametrize("only_mirror", [False, True])
def test_no_mirror_matching_when_match_mirrored_is_off(
    strict: Amparo, photo: Image.Image, only_mirror: bool
) -> None:
    query = _query(ImageOps.mirror(photo), only_mirror=only_mirror)
    assert strict.matcher.match([query])[0].matches == []
    # A bank with dihedral still matches it, mirror included.
    strict.banks.update("plainbank", dihedral=True)
    if not only_mirror:
        [match] = strict.matcher.match([query])[0].matches
        assert (match.path, match.transform) == ("dihedral", "flipy")


def test_rules_tell_a_mirrored_find_apart(amparo: Amparo, photo: Image.Image) -> None:
    [result] = amparo.matcher.match([_query(ImageOps.mirror(photo), only_mirror=True)])
    find = MatchedContent(sha256="0" * 64, matches=tuple(result.matches), source=Source("api"))

    def rule(paths: list[str]) -> Rule:
        return Rule.from_json({"name": "r", "actions": ["review"], "conditions": {"paths": paths}})

    assert rule(["dihedral"]).matches(find)
    assert not rule(["plain", "trimmed", "variant"]).matches(find)


def test_stored_matches_from_before_paths_read_back() -> None:
    old = {"bank": "b", "entry_id": 1, "signal_type": "pdq", "distance": 3}
    assert match_of(old).path == "plain"
    assert match_of({**old, "transform": "rotate90"}).path == "dihedral"
    assert match_of({**old, "path": "bogus"}).path == "plain"
    variant = Match("b", 1, "pdq", 3, path="variant", variant="crop5-left")
    assert match_of(variant.to_json()) == variant
