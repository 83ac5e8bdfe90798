"""Signal types: stable names, validation of text forms, distances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from amparo.errors import InvalidSignalError, UnknownSignalTypeError
from amparo.signals import get_signal_type, normalize_signal, signal_type_names, signal_types
from amparo.signals.pdq import PDQ_BYTES, PdqSignal, _popcount_by_table, hamming_matrix


def test_names_are_stable() -> None:
    assert {"pdq", "md5", "sha1", "sha256"} <= set(signal_type_names())


@pytest.mark.parametrize("name", ["pdq", "md5", "sha1", "sha256"])
def test_examples_are_valid_and_normalised(name: str) -> None:
    st_ = get_signal_type(name)
    for example in st_.examples:
        assert st_.normalize(" " + example.upper() + "\n") == example
        assert st_.distance(example, example) == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [("pdq", "abc"), ("md5", "g" * 32), ("sha1", "a" * 39), ("sha256", "a" * 65), ("pdq", "")],
)
def test_invalid_values_are_refused_with_a_hint(name: str, value: str) -> None:
    with pytest.raises(InvalidSignalError) as info:
        normalize_signal(name, value)
    assert info.value.hint and "hexadecimal" in info.value.hint


def test_unknown_type() -> None:
    with pytest.raises(UnknownSignalTypeError, match="known types"):
        get_signal_type("photodna")


@given(st.integers(0, 2**256 - 1), st.integers(0, 2**256 - 1))
def test_pdq_distance_is_popcount_of_xor(a: int, b: int) -> None:
    pdq = get_signal_type("pdq")
    assert pdq.distance(f"{a:064x}", f"{b:064x}") == bin(a ^ b).count("1")


def test_each_type_declares_how_it_is_looked_up() -> None:
    """Matching, indexing and the formats ask the type, never its name: the traits they use."""
    kinds = {t.name: t.index_kind for t in signal_types()}
    assert kinds == {
        "pdq": "hamming",
        "md5": "exact",
        "sha1": "exact",
        "sha256": "exact",
        "vpdq": "video",
    }
    for t in signal_types():
        assert t.exact == (t.index_kind == "exact")
        if t.key_bytes is not None:  # the index key is the canonical hex, decoded
            assert len(bytes.fromhex(t.examples[0])) == t.key_bytes
    assert [t.name for t in signal_types() if t.long_value] == ["vpdq"]
    assert [t.name for t in signal_types("exact")] == ["md5", "sha1", "sha256"]


def test_line_form_of_a_digest_is_its_canonical_form() -> None:
    md5 = get_signal_type("md5")
    value = md5.examples[0]
    assert md5.from_line(value.upper()) == md5.to_line(value) == value
    assert md5.read_value(f"{value} some metadata") == value


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=6))
def test_hamming_matrix_agrees_with_the_popcount_table(rows: list[bytes]) -> None:
    """The byte-table popcount (for numpy < 2.0) gives the same distances as the text form."""
    packed = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, PDQ_BYTES)
    words = packed.view(np.uint64)
    assert _popcount_by_table(words).tolist() == [
        [int(w).bit_count() for w in row] for row in words.tolist()
    ]
    expected = [[PdqSignal.distance(a.hex(), b.hex()) for b in rows] for a in rows]
    assert hamming_matrix(packed, packed).tolist() == expected
