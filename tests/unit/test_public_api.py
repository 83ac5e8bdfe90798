"""The curated public API is exactly what ``amparo.__all__`` says."""

from __future__ import annotations

import inspect

import amparo

EXPECTED = {
    "Amparo",
    "AmparoError",
    "BankInfo",
    "EntryRecord",
    "ImportReport",
    "Match",
    "MediaHashes",
    "QueryResult",
    "Settings",
    "__version__",
    "hash_media",
    "load_settings",
}


def test_public_api_is_curated() -> None:
    assert set(amparo.__all__) == EXPECTED
    for name in amparo.__all__:
        assert hasattr(amparo, name)
    # subpackages and modules become attributes once imported
    public = {
        n for n in dir(amparo) if not n.startswith("_") and not inspect.ismodule(getattr(amparo, n))
    }
    assert public <= EXPECTED
