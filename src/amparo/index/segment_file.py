"""The on-disk container for index segments: a versioned header, then aligned flat arrays.

Byte layout (all integers little-endian)::

    0    8   magic  b"AMPARIDX"
    8    4   format version (uint32), currently 1
    12   4   header length H (uint32)
    16   32  blake2b-256 of the header bytes
    48   H   header: UTF-8 JSON {"kind", "meta", "file_size", "arrays": [
                 {"name", "dtype", "shape", "offset", "nbytes", "blake2b"}, ...]}
    ...      zero padding to a 64-byte boundary, then each array's raw bytes (C order),
             each starting on a 64-byte boundary at its recorded ``offset``

Opening checks the magic, version, header checksum, the exact file size and every array's
bounds, then maps the file read-only: worker processes share one copy through the page
cache and opening costs milliseconds whatever the size. Hashing the payload reads every
byte, so it is separate (:meth:`SegmentFile.verify`): run it after copying files, from a
CLI check such as ``amparo index verify``, or pass ``verify=True``.

Files are written to a temporary name in the same directory, fsynced and renamed over the
target, so a crash mid-write never damages the segment in use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import struct
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from amparo.errors import IndexCorruptError
from amparo.files import fsync_dir, open_private

MAGIC = b"AMPARIDX"
FORMAT_VERSION = 1
ALIGN = 64
_PREAMBLE = struct.Struct("<8sII32s")
# madvise(2) advice that faults a mapping's pages in (Linux 5.14+; not named by Python 3.11).
_MADV_POPULATE_READ = 22
REBUILD_HINT = "run `amparo index rebuild` to rebuild the index from the database"


def _bytes_of(array: NDArray[Any]) -> memoryview:
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8).data


def _digest(array: NDArray[Any]) -> str:
    return hashlib.blake2b(_bytes_of(array), digest_size=32).hexdigest()


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def corrupt(path: Path, problem: str) -> IndexCorruptError:
    """The error for a damaged segment file, with the hint to rebuild."""
    return IndexCorruptError(f"index segment {path} is damaged: {problem}", hint=REBUILD_HINT)


def write_atomic(path: Path, chunks: list[bytes | memoryview]) -> None:
    """Write ``chunks`` to a temp file beside ``path``, fsync it, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_segment(
    path: Path, kind: str, meta: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]
) -> int:
    """Write a segment file atomically; returns its size in bytes."""
    contiguous = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    with ThreadPoolExecutor(max_workers=2) as pool:  # hashlib releases the GIL
        digests = dict(zip(contiguous, pool.map(_digest, contiguous.values()), strict=True))

    def header_bytes(payload_start: int) -> tuple[bytes, list[tuple[int, NDArray[Any]]]]:
        entries, placed, offset = [], [], payload_start
        for name, a in contiguous.items():
            entries.append(
                {
                    "name": name,
                    "dtype": a.dtype.str,
                    "shape": list(a.shape),
                    "offset": offset,
                    "nbytes": int(a.nbytes),
                    "blake2b": digests[name],
                }
            )
            placed.append((offset, a))
            offset = _align(offset + a.nbytes)
        doc = {"kind": kind, "meta": dict(meta), "file_size": offset, "arrays": entries}
        return json.dumps(doc, sort_keys=True).encode(), placed

    # The header records absolute offsets, which depend on its own length: iterate once more
    # if the first guess at the payload start was too small.
    start = _align(_PREAMBLE.size + 1024)
    header, placed = header_bytes(start)
    while _align(_PREAMBLE.size + len(header)) > start:
        start = _align(_PREAMBLE.size + len(header))
        header, placed = header_bytes(start)
    preamble = _PREAMBLE.pack(
        MAGIC, FORMAT_VERSION, len(header), hashlib.blake2b(header, digest_size=32).digest()
    )
    chunks: list[bytes | memoryview] = [preamble, header]
    position = _PREAMBLE.size + len(header)
    for offset, a in placed:
        chunks.append(b"\0" * (offset - position))
        chunks.append(_bytes_of(a))
        position = offset + a.nbytes
    size = json.loads(header)["file_size"]
    chunks.append(b"\0" * (size - position))
    write_atomic(path, chunks)
    return int(size)


@dataclass(frozen=True)
class SegmentFile:
    """A segment file mapped read-only: its kind, metadata and arrays (views of the map)."""

    path: Path
    kind: str
    meta: dict[str, Any]
    arrays: dict[str, NDArray[Any]]
    file_size: int
    _checksums: dict[str, str]
    _buffer: mmap.mmap | None = None

    @classmethod
    def open(cls, path: Path, *, kind: str, verify: bool = False) -> SegmentFile:
        """Map ``path``; raise :class:`IndexCorruptError` if its header or size is wrong."""
        try:
            with open(path, "rb") as fh:
                actual_size = os.fstat(fh.fileno()).st_size
                preamble = fh.read(_PREAMBLE.size)
                if len(preamble) < _PREAMBLE.size:
                    raise corrupt(path, "file is shorter than its header")
                magic, version, header_len, header_sum = _PREAMBLE.unpack(preamble)
                if magic != MAGIC:
                    raise corrupt(path, "not an Amparo index segment (bad magic)")
                if version != FORMAT_VERSION:
                    raise corrupt(path, f"format version {version}, expected {FORMAT_VERSION}")
                header = fh.read(header_len)
                if hashlib.blake2b(header, digest_size=32).digest() != header_sum:
                    raise corrupt(path, "header checksum mismatch")
                doc = json.loads(header)
                if doc["kind"] != kind:
                    raise corrupt(path, f"holds a {doc['kind']!r} index, expected {kind!r}")
                if doc["file_size"] != actual_size:
                    raise corrupt(path, f"size {actual_size}, expected {doc['file_size']}")
                buffer = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, UnicodeDecodeError, struct.error) as exc:
            raise corrupt(path, f"cannot be read ({exc})") from exc
        raw = np.frombuffer(buffer, dtype=np.uint8)
        arrays: dict[str, NDArray[Any]] = {}
        checksums: dict[str, str] = {}
        for entry in doc["arrays"]:
            dtype = np.dtype(entry["dtype"])
            shape = tuple(entry["shape"])
            offset, nbytes = int(entry["offset"]), int(entry["nbytes"])
            if offset + nbytes > actual_size or int(np.prod(shape)) * dtype.itemsize != nbytes:
                raise corrupt(path, f"array {entry['name']!r} is out of bounds")
            arrays[entry["name"]] = raw[offset : offset + nbytes].view(dtype).reshape(shape)
            checksums[entry["name"]] = entry["blake2b"]
        segment = cls(path, kind, doc["meta"], arrays, actual_size, checksums, buffer)
        if verify:
            segment.verify()
        return segment

    def populate(self) -> None:
        """Fault the whole map in now (``MADV_POPULATE_READ``; Linux 5.14+, else a
        read-ahead hint), so the first lookups of a process do not each wait on page faults.
        A long-running service calls this once before it reports ready."""
        if self._buffer is None:
            return
        try:
            self._buffer.madvise(_MADV_POPULATE_READ)
        except (OSError, ValueError, AttributeError):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                self._buffer.madvise(mmap.MADV_WILLNEED)

    def verify(self) -> None:
        """Hash every array and compare with the header; raise if any byte differs."""
        with ThreadPoolExecutor(max_workers=2) as pool:
            names = list(self.arrays)
            for name, digest in zip(names, pool.map(_digest, self.arrays.values()), strict=True):
                if digest != self._checksums[name]:
                    raise corrupt(self.path, f"checksum mismatch in array {name!r}")
