"""Signal types (pdq, md5, sha1, sha256, vpdq) and the functions that compute them.

Importing this package registers every signal type; PyAV (video decoding) is imported only
when a video is hashed.
"""

from amparo.signals.base import (
    IndexKind,
    SignalType,
    get_signal_type,
    normalize_signal,
    signal_type_names,
    signal_types,
)
from amparo.signals.digests import DIGEST_NAMES, FileDigests, digest_bytes, digest_stream
from amparo.signals.pdq import DEFAULT_THRESHOLD, PdqHash, PdqSignal
from amparo.signals.vpdq import VpdqSignal

__all__ = [
    "DEFAULT_THRESHOLD",
    "DIGEST_NAMES",
    "FileDigests",
    "IndexKind",
    "PdqHash",
    "PdqSignal",
    "SignalType",
    "VpdqSignal",
    "digest_bytes",
    "digest_stream",
    "get_signal_type",
    "normalize_signal",
    "signal_type_names",
    "signal_types",
]
