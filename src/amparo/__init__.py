"""Amparo: find known child sexual abuse material by hash matching, and act on each find.

The public API is what this module exports; ``tests/unit/test_public_api.py`` guards it.

Names are imported on first use (PEP 562): ``import amparo`` is what every ``amparo`` command
and every submodule import pays first, and the app behind ``Amparo`` pulls in SQLAlchemy,
FastAPI and numba. ``amparo --version`` or ``amparo hash`` should not wait for those
(issue #18); ``from amparo import Amparo`` still works the same.
"""

import sys
import typing

__version__ = "0.1.0"

if typing.TYPE_CHECKING:  # the names, for type checkers; no module-level name added
    from amparo.app import Amparo
    from amparo.banks.model import BankInfo, EntryRecord
    from amparo.banks.service import ImportReport
    from amparo.config import Settings, load_settings
    from amparo.errors import AmparoError
    from amparo.hashing import MediaHashes, hash_media
    from amparo.matching import Match, QueryResult

_HOMES = {
    "Amparo": "amparo.app",
    "AmparoError": "amparo.errors",
    "BankInfo": "amparo.banks.model",
    "EntryRecord": "amparo.banks.model",
    "ImportReport": "amparo.banks.service",
    "Match": "amparo.matching",
    "MediaHashes": "amparo.hashing",
    "QueryResult": "amparo.matching",
    "Settings": "amparo.config",
    "hash_media": "amparo.hashing",
    "load_settings": "amparo.config",
}
"""Where each public name lives: imported, and cached here, the first time it is asked for."""

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


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'amparo' has no attribute {name!r}")
    __import__(home)  # the submodule, and nothing more
    value = getattr(sys.modules[home], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
