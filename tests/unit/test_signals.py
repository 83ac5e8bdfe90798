"""Signal types: stable names, validation of text forms, distances."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amparo.errors import InvalidSignalError, UnknownSignalTypeError
from amparo.signals import get_signal_type, normalize_signal, signal_type_names


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
