"""The curated public API is exactly what ``amparo.__all__`` says."""

from __future__ import annotations

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
    public = {n for n in dir(amparo) if not n.startswith("_")} - {
        # subpackages become attributes once imported
        "app",
        "banks",
        "config",
        "errors",
        "hashing",
        "index",
        "matching",
        "media",
        "signals",
        "store",
        "cli",
        "scan",
        "api",
        "fetch",
        "auth",
        "keys",
        "demo",
        "indexing",
        "video_matching",
    }
    assert public <= EXPECTED
