"""Amparo: find known child sexual abuse material by hash matching, and act on each find.

The public API is what this module exports; ``tests/unit/test_public_api.py`` guards it.
"""

from amparo.app import Amparo
from amparo.banks.model import BankInfo, EntryRecord
from amparo.banks.service import ImportReport
from amparo.config import Settings, load_settings
from amparo.errors import AmparoError
from amparo.hashing import MediaHashes, hash_media
from amparo.matching import Match, QueryResult

__version__ = "0.1.0"

__all__ = [
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
]
