"""The review queue's order (a worse category first, then a closer match, then the longest
waiting), match merging, and the shielded rendition of media.

The order is asserted as orderings between finds, not as the formula that produces it."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import skimage.data
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from amparo.app import Amparo
from amparo.config import Settings
from amparo.errors import UnsupportedMediaError
from amparo.events import MatchedContent, Source
from amparo.matching import Match
from amparo.media.sniff import HEAD_BYTES, media_kind, sniff
from amparo.review import media
from amparo.review.priority import category_rank, merge_matches, priority_of

SEVERITY = ["A1", "A2", "B1", "B2", None]
"""Categories from the most to the least severe (``csam`` ranks with ``B2``)."""
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _m(
    bank: str, entry: int, distance: int, category: str | None = None, signal_type: str = "pdq"
) -> dict[str, object]:
    return {
        "bank": bank,
        "entry_id": entry,
        "signal_type": signal_type,
        "distance": distance,
        "category": category,
    }


def _queue_order(*items: list[dict[str, object]]) -> list[int]:
    """Indexes of ``items`` (each an item's matches) in queue order, most urgent first; a
    stable sort, so equals keep the order they came in (the queue's oldest first)."""
    return sorted(range(len(items)), key=lambda i: -priority_of(items[i]))


def test_category_ranks_follow_the_classification() -> None:
    ranks = [category_rank(c) for c in ("A1", "a2", " B1 ", "b2", "csam", "other", None, "")]
    assert ranks == sorted(ranks, reverse=True) and len(set(ranks[:4])) == 4
    assert category_rank("csam") == category_rank("B2")  # Project VIC's category 1
    assert category_rank("other") == category_rank(None) == category_rank("") == 0


@given(
    worse=st.sampled_from(range(len(SEVERITY) - 1)),
    gap=st.integers(min_value=1, max_value=len(SEVERITY) - 1),
    far=st.integers(min_value=0, max_value=10_000),
    near=st.integers(min_value=0, max_value=10_000),
)
def test_a_worse_category_comes_first_however_far_its_match(
    worse: int, gap: int, far: int, near: int
) -> None:
    milder = min(worse + gap, len(SEVERITY) - 1)
    severe = [_m("k", 1, far, SEVERITY[worse])]
    mild = [_m("k", 2, near, SEVERITY[milder])]
    assert _queue_order(mild, severe) == [1, 0]


@given(
    category=st.sampled_from(SEVERITY),
    closer=st.integers(min_value=0, max_value=255),
    step=st.integers(min_value=1, max_value=255),
)
def test_within_a_category_a_closer_match_comes_first(
    category: str | None, closer: int, step: int
) -> None:
    far = [_m("k", 1, closer + step, category)]
    near = [_m("k", 2, closer, category)]
    assert _queue_order(far, near) == [1, 0]


def test_an_exact_hash_comes_before_a_distant_pdq_match() -> None:
    pdq = [_m("k", 1, 31, "A2")]
    md5 = [_m("k", 2, 0, "A2", signal_type="md5")]
    assert _queue_order(pdq, md5) == [1, 0]


def test_an_item_ranks_by_its_most_severe_category_and_its_closest_match() -> None:
    """Whichever matches they come from: an A1 at 30 bits plus a B2 at 1 bit ranks as an A1
    at 1 bit, above an A1 at 2 bits."""
    mixed = [_m("k", 1, 30, "A1"), _m("k", 2, 1, "B2")]
    assert priority_of(mixed) == priority_of([_m("k", 3, 1, "A1")])
    assert _queue_order([_m("k", 4, 2, "A1")], mixed) == [1, 0]


def test_matches_of_no_known_category_and_no_matches_come_last() -> None:
    order = _queue_order([], [_m("k", 1, 0, "other")], [_m("k", 2, 200, "B2")])
    assert order == [2, 1, 0]


def test_equals_keep_their_order() -> None:
    """Finds alike in category and distance (whichever entry or bank) tie, so the queue's
    next key, the time waited, decides between them (see the queue test below)."""
    same = [[_m(bank, i, 4, "A2")] for i, bank in enumerate("kkjjx")]
    assert _queue_order(*same) == [0, 1, 2, 3, 4]


def test_merge_keeps_the_closest_of_each_entry_and_ranks_the_merged_item() -> None:
    merged, priority = merge_matches(
        [_m("k", 1, 12, "B1"), _m("k", 2, 5)], [_m("k", 1, 3, "B1"), _m("j", 9, 0)]
    )
    assert [(m["bank"], m["entry_id"], m["distance"]) for m in merged] == [
        ("j", 9, 0),
        ("k", 1, 3),
        ("k", 2, 5),
    ]
    # A new, closer sighting moves the item up the queue; the merged item ranks as its best.
    assert priority > priority_of([_m("k", 1, 12, "B1"), _m("k", 2, 5)])
    assert priority == priority_of([_m("k", 1, 0, "B1")])


def _find(account: str, category: str, distance: int, at: datetime) -> MatchedContent:
    sha = hashlib.sha256(account.encode()).hexdigest()
    return MatchedContent(
        sha256=sha,
        matches=(Match("known", 1, "pdq", distance, category=category),),
        source=Source(kind="api", account_id=account),
        md5=sha[:32],
        size=100,
        media_kind="photo",
        at=at,
    )


def test_the_review_queue_puts_the_most_urgent_first_then_the_longest_waiting(
    sqlite_settings: Settings,
) -> None:
    finds = [  # (account, category, distance, minutes after T0)
        ("newer-a1-near", "A1", 2, 30),
        ("b2-exact", "B2", 0, 0),
        ("older-a1-near", "A1", 2, 10),
        ("a1-far", "A1", 40, 0),
        ("a2-exact", "A2", 0, 5),
        ("same-time-second", "B1", 8, 20),
        ("same-time-first", "B1", 8, 20),
    ]
    with Amparo(sqlite_settings) as amparo:
        ids = {
            account: amparo.cases.open_or_extend(
                _find(account, category, distance, T0 + timedelta(minutes=minutes))
            )
            for account, category, distance, minutes in sorted(
                finds, key=lambda f: f[0] != "same-time-second"
            )  # opened first, though listed second
        }
        queue = [c.id for c in amparo.cases.queue()]
    by_id = {case_id: account for account, case_id in ids.items()}
    assert [by_id[c] for c in queue] == [
        "older-a1-near",
        "newer-a1-near",
        "a1-far",
        "a2-exact",
        "same-time-second",
        "same-time-first",
        "b2-exact",
    ]


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
