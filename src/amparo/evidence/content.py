"""Content to preserve, read in blocks (a file is streamed, never read whole), and its
digests."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amparo.media.sniff import HEAD_BYTES

READ_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class Digests:
    sha256: str
    md5: str
    size: int
    head: bytes
    """The first bytes, to sniff the media kind from."""


def digest(data: bytes | Path) -> Digests:
    """SHA-256, MD5, size and head of the content, in one pass."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    size = 0
    head = b""
    for piece in pieces(data):
        if len(head) < HEAD_BYTES:
            head += piece[: HEAD_BYTES - len(head)]
        sha.update(piece)
        md5.update(piece)
        size += len(piece)
    return Digests(sha.hexdigest(), md5.hexdigest(), size, head)


def pieces(data: bytes | Path, check: Any = None) -> Iterable[bytes]:
    """The content in blocks, each also fed to ``check`` (a hash object) when given."""
    if isinstance(data, Path):
        with data.open("rb") as fh:
            while block := fh.read(READ_BLOCK):
                if check is not None:
                    check.update(block)
                yield block
        return
    view = memoryview(data)
    for start in range(0, len(view), READ_BLOCK):
        block = bytes(view[start : start + READ_BLOCK])
        if check is not None:
            check.update(block)
        yield block
