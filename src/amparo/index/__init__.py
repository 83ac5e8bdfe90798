"""Exact lookup structures. Knows nothing of storage, HTTP or the CLI."""

from amparo.index.base import MAX_RADIUS, IndexHits, PdqIndex
from amparo.index.brute import BruteForcePdqIndex
from amparo.index.digest import DIGEST_WIDTHS, DigestHits, DigestSegment
from amparo.index.live import IndexStats
from amparo.index.pdq_segment import PdqSegment
from amparo.index.segment_file import FORMAT_VERSION, SegmentFile
from amparo.index.segmented import SegmentedDigestTable, SegmentedPdqIndex

__all__ = [
    "DIGEST_WIDTHS",
    "FORMAT_VERSION",
    "MAX_RADIUS",
    "BruteForcePdqIndex",
    "DigestHits",
    "DigestSegment",
    "IndexHits",
    "IndexStats",
    "PdqIndex",
    "PdqSegment",
    "SegmentFile",
    "SegmentedDigestTable",
    "SegmentedPdqIndex",
]
