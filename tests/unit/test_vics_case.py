"""The VICS case built from scan matches: grouping, categories, and a round trip through
Amparo's VICS reader for any set of matches."""

from __future__ import annotations

import io
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amparo.banks.formats import iter_entries
from amparo.errors import InputError
from amparo.reports.vics_case import vics_case
from amparo.scan.result import FoundMatch


def _found(path: str, seed: int, category: str | None, signal: str = "md5") -> FoundMatch:
    rng = random.Random(seed)
    hashes = {
        "md5": f"{rng.getrandbits(128):032x}",
        "sha1": f"{rng.getrandbits(160):040x}",
        "sha256": f"{rng.getrandbits(256):064x}",
    }
    match = {"bank": "b", "entry_id": seed, "signal_type": signal, "distance": 0}
    return FoundMatch(path, 10 + seed, "photo", {**match, "category": category}, hashes)


def test_one_media_per_content_with_the_most_severe_category() -> None:
    doc = vics_case(
        "C1",
        [
            _found("/x/a.jpg", 1, "exploitative"),
            _found("/x/a.jpg", 1, "csam", "pdq"),  # same file, two matches
            _found("/y/a-copy.jpg", 1, None),
            _found("/x/b.jpg", 2, "someone-elses-scheme"),
            _found("/x/c.jpg", 3, "ignore"),
        ],
    )
    media = doc["value"][0]["Media"]
    assert [m["MediaID"] for m in media] == [1, 2, 3]
    assert media[0]["Category"] == 1
    assert [f["FilePath"] for f in media[0]["MediaFiles"]] == ["/x/a.jpg", "/y/a-copy.jpg"]
    assert "Category" not in media[1] and "Category" not in media[2]
    assert media[0]["MD5"] == media[0]["MD5"].upper()


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "x" * 101, "-a", "a b"])
def test_case_ids_must_be_safe_file_names(bad: str) -> None:
    with pytest.raises(InputError):
        vics_case(bad, [])


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 30), st.sampled_from(["csam", "exploitative", "cgi_animation", None])
        ),
        max_size=12,
    )
)
def test_round_trip_through_the_vics_reader(items: list[tuple[int, str | None]]) -> None:
    found = [_found(f"/e/{seed}-{n}.jpg", seed, cat) for n, (seed, cat) in enumerate(items)]
    doc = vics_case("RT", found)
    records = list(iter_entries(io.StringIO(json.dumps(doc)), "vics"))
    severity = {"csam": 1, "exploitative": 2, "cgi_animation": 3}
    expected: dict[str, str | None] = {}
    for f in found:
        current = expected.get(f.hashes["md5"])
        cat = f.match["category"]
        if cat is not None and (current is None or severity[str(cat)] < severity[current]):
            expected[f.hashes["md5"]] = str(cat)
        else:
            expected.setdefault(f.hashes["md5"], current)
    assert {r.signal: r.category for r in records if r.signal_type == "md5"} == expected
    assert len(records) == 3 * len(expected)
