"""Imports the built-in exchange types so they register themselves."""

from __future__ import annotations

# Each module registers its exchange with @register; import order is the listing order.
from amparo.exchanges import (  # noqa: F401
    amparo_feed,
    file,
    ncmec,
    stopncii,
    threatexchange,
)
