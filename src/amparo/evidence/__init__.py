"""Encrypted, integrity-checked preservation of content (see docs/evidence.md).

Contract::

    item = amparo.evidence.preserve(data_or_path, content=matched_content, reason=..., actor=...)
    data = amparo.evidence.read(item.id, actor=...)      # logged; integrity checked

The names below are imported on first use: the storage repository imports
:mod:`amparo.evidence.model`, which must not pull the service (and it) back in.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amparo.evidence.maintenance import PurgeReport, RotationReport, VerifyReport
    from amparo.evidence.model import EvidenceItem
    from amparo.evidence.service import EvidenceStore

__all__ = ["EvidenceItem", "EvidenceStore", "PurgeReport", "RotationReport", "VerifyReport"]

_HOMES = {
    "EvidenceItem": "amparo.evidence.model",
    "EvidenceStore": "amparo.evidence.service",
    "PurgeReport": "amparo.evidence.maintenance",
    "RotationReport": "amparo.evidence.maintenance",
    "VerifyReport": "amparo.evidence.maintenance",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(home), name)
