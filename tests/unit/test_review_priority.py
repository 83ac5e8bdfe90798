"""Queue priority, match merging and the shielded rendition of media (pure functions)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from amparo.errors import UnsupportedMediaError
from amparo.media.sniff import HEAD_BYTES, media_kind, sniff
from amparo.review import media
from amparo.review.priority import category_rank, merge_matches, priority_of


def _m(bank: str, entry: int, distance: int, category: str | None = None) -> dict[str, object]:
    return {
        "bank": bank,
        "entry_id": entry,
        "signal_type": "pdq",
        "distance": distance,
        "category": category,
    }


def test_category_ranks_follow_the_classification() -> None:
    ranks = [category_rank(c) for c in ("A1", "a2", " B1 ", "b2", "csam", "other", None, "")]
    assert ranks == [4, 3, 2, 1, 1, 0, 0, 0]


def test_priority_orders_category_before_distance() -> None:
    far_a1 = priority_of([_m("k", 1, 31, "A1")])
    near_a2 = priority_of([_m("k", 2, 0, "A2")])
    near_a1 = priority_of([_m("k", 3, 2, "A1")])
    assert near_a1 > far_a1 > near_a2 > priority_of([_m("k", 4, 0)]) > priority_of([]) - 1
    # The most severe category and the closest distance of an item count, whichever match.
    assert priority_of([_m("k", 1, 30, "A1"), _m("k", 2, 1, "B2")]) == 4000 + 999 - 1


def test_merge_keeps_the_closest_of_each_entry() -> None:
    merged, priority = merge_matches(
        [_m("k", 1, 12, "B1"), _m("k", 2, 5)], [_m("k", 1, 3, "B1"), _m("j", 9, 0)]
    )
    assert [(m["bank"], m["entry_id"], m["distance"]) for m in merged] == [
        ("j", 9, 0),
        ("k", 1, 3),
        ("k", 2, 5),
    ]
    assert priority == 2000 + 999


def _jpeg(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_shielded_rendition_is_grey_blurred_and_small() -> None:
    data = _jpeg(skimage.data.astronaut())
    shield = media.shielded(data, max_pixels=10**8)
    image = Image.open(io.BytesIO(shield.data))
    assert shield.mime == "image/jpeg" and image.mode == "L"
    assert max(image.size) <= media.SHIELD_SIDE
    grey = np.asarray(image, dtype=np.float64)
    original = np.asarray(
        Image.open(io.BytesIO(data)).convert("L").resize(image.size), dtype=np.float64
    )

    def detail(p: np.ndarray) -> float:
        return float(np.abs(np.diff(p, axis=0)).mean() + np.abs(np.diff(p, axis=1)).mean())

    assert detail(grey) < detail(original) / 10
    clear = Image.open(io.BytesIO(media.clear(data, max_pixels=10**8).data))
    assert clear.mode == "RGB" and max(clear.size) <= media.CLEAR_SIDE
    assert "exif" not in clear.info


def test_media_kinds() -> None:
    def kind_of(data: bytes) -> str | None:
        return media_kind(sniff(data[:HEAD_BYTES]))

    assert kind_of(_jpeg(np.zeros((8, 8, 3), np.uint8))) == "photo"
    assert kind_of(b"\x00\x00\x00\x18ftypmp42" + bytes(600)) == "video"
    assert kind_of(b"<html>") is None
    with pytest.raises(UnsupportedMediaError):
        media.shielded(b"<html>" + bytes(600), max_pixels=10**8)
