"""MD5, SHA-1 and SHA-256 of file bytes: exact matching of byte-identical copies."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from amparo.signals.base import HexDigestSignal, register


@register
class Md5Signal(HexDigestSignal):
    name = "md5"
    hex_length = 32
    key_bytes = 16
    examples = ("d41d8cd98f00b204e9800998ecf8427e", "0cc175b9c0f1b6a831c399e269772661")


@register
class Sha1Signal(HexDigestSignal):
    name = "sha1"
    hex_length = 40
    key_bytes = 20
    examples = (
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8",
    )


@register
class Sha256Signal(HexDigestSignal):
    name = "sha256"
    hex_length = 64
    key_bytes = 32
    examples = (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb",
    )


DIGEST_NAMES = ("md5", "sha1", "sha256")


@dataclass(frozen=True)
class FileDigests:
    md5: str
    sha1: str
    sha256: str
    size: int


_CHUNK = 1024 * 1024


def digest_bytes(data: bytes) -> FileDigests:
    return FileDigests(
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )


def digest_stream(stream: BinaryIO) -> FileDigests:
    """Digest a stream in chunks, so files larger than memory can be hashed."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha1 = hashlib.sha1(usedforsecurity=False)
    sha256 = hashlib.sha256()
    size = 0
    while chunk := stream.read(_CHUNK):
        md5.update(chunk)
        sha1.update(chunk)
        sha256.update(chunk)
        size += len(chunk)
    return FileDigests(md5.hexdigest(), sha1.hexdigest(), sha256.hexdigest(), size)


def digest_source(
    source: bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO,
) -> FileDigests:
    """Digests of bytes, of a file by path (streamed), or of a seekable binary file (read
    from where it stands, then put back there)."""
    if isinstance(source, bytes | bytearray | memoryview):
        return digest_bytes(bytes(source))
    if isinstance(source, str | os.PathLike):
        with Path(source).open("rb") as fh:
            return digest_stream(fh)
    start = source.tell()
    digests = digest_stream(source)
    source.seek(start)
    return digests
