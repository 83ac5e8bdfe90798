"""Encrypted, integrity-checked preservation of content (see docs/evidence.md).

Contract::

    item = amparo.evidence.preserve(data_or_path, content=matched_content, reason=..., actor=...)
    data = amparo.evidence.read(item.id, actor=...)      # logged; integrity checked
"""

from amparo.evidence.maintenance import PurgeReport, RotationReport, VerifyReport
from amparo.evidence.service import EvidenceItem, EvidenceStore

__all__ = ["EvidenceItem", "EvidenceStore", "PurgeReport", "RotationReport", "VerifyReport"]
