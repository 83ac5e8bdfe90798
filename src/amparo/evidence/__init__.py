"""Encrypted, integrity-checked preservation of content (owned by the evidence work).

Contract::

    item = amparo.evidence.preserve(data_or_path, content=matched_content, reason=..., actor=...)
    data = amparo.evidence.read(item.id, actor=...)      # logged; integrity checked
"""

from amparo.evidence.service import EvidenceStore

__all__ = ["EvidenceStore"]
