"""Reading inside zip and tar archives (plain, gzip, bzip2, xz), nested ones too, with guards
against decompression bombs. Nothing is ever extracted to disk: members are read into memory
(each at most ``max_archive_member_bytes``) and handed to the hashing stage.

Guards, all from settings:
- a member larger than ``max_archive_member_bytes`` is refused (declared or actual size);
- a zip member expanding more than ``max_archive_ratio`` times its compressed size is refused;
- everything read out of one archive on disk (nested archives included) may total at most
  ``max_archive_ratio`` times the archive's size (with a small floor), then reading stops.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO, Protocol

from amparo.media.sniff import ARCHIVE_TYPES, HEAD_BYTES, sniff
from amparo.scan.model import (
    MEMBER_SEPARATOR,
    ArchiveLimits,
    HashTask,
    ItemRecord,
    Problem,
    Resumed,
)

WalkItem = HashTask | Problem | Resumed
Previous = Callable[[str, int, int], ItemRecord | None]
"""Looks up an item done in an earlier run: (path, size, mtime_ns) -> its record, or None."""

RATIO_FLOOR = 1024 * 1024
"""Below this many bytes, expansion ratios are not checked: small members cannot hurt."""

_COMPRESSED_STREAMS = ("gzip", "bzip2", "xz")
_SUFFIXES = {"gzip": (".gz", ".tgz"), "bzip2": (".bz2", ".tbz2"), "xz": (".xz", ".txz")}
_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    zlib.error,
    lzma.LZMAError,
    zipfile.BadZipFile,
    tarfile.TarError,
)


class ExpansionBudget:
    """Bytes still allowed out of one archive on disk, shared by the archives nested in it."""

    def __init__(self, archive_size: int, max_ratio: int) -> None:
        self.total = max(archive_size * max_ratio, RATIO_FLOOR)
        self.left = self.total
        self.exhausted = False


def expand(
    path: str,
    fileobj: BinaryIO,
    media_type: str,
    *,
    limits: ArchiveLimits,
    budget: ExpansionBudget,
    mtime_ns: int,
    depth: int = 1,
    previous: Previous | None = None,
) -> Iterator[WalkItem]:
    """Yield a task (or problem, or resumed record) for every member of the archive at
    ``path``, recursing into archive members up to ``limits.max_depth``."""
    reader = _Reader(limits, budget, mtime_ns, previous)
    if media_type == "zip":
        yield from reader.zip(path, fileobj, depth)
    else:
        yield from reader.tar(path, fileobj, media_type, depth)


class _Reader:
    def __init__(
        self,
        limits: ArchiveLimits,
        budget: ExpansionBudget,
        mtime_ns: int,
        previous: Previous | None,
    ) -> None:
        self.limits = limits
        self.budget = budget
        self.mtime_ns = mtime_ns
        self.previous = previous

    # -- formats --------------------------------------------------------------------------

    def zip(self, path: str, fileobj: BinaryIO, depth: int) -> Iterator[WalkItem]:
        try:
            archive = zipfile.ZipFile(fileobj)
        except _READ_ERRORS as exc:
            yield _error(path, "corrupt_archive", f"cannot open the zip archive: {exc}", False)
            return
        with archive:
            for info in archive.infolist():
                if self.budget.exhausted:
                    return
                if info.is_dir():
                    continue
                name = _join(path, info.filename)
                if info.flag_bits & 0x1:
                    yield _error(name, "encrypted", "encrypted archive member: cannot be checked")
                    continue
                if refusal := self._refuse(info.file_size, info.compress_size):
                    yield _error(name, "archive_bomb", refusal)
                    continue
                done = self._done(name, info.file_size)
                if done is not None and done.media_type not in ARCHIVE_TYPES:
                    yield Resumed(done)
                    continue
                try:
                    with archive.open(info) as member:
                        data = self._read(member)
                except _READ_ERRORS as exc:
                    yield _error(name, "corrupt_archive", f"cannot read the member: {exc}")
                    continue
                yield from self._member(name, data, depth, done)

    def tar(self, path: str, fileobj: BinaryIO, media_type: str, depth: int) -> Iterator[WalkItem]:
        if media_type in _COMPRESSED_STREAMS and not _holds_tar(fileobj, media_type):
            # A compressed file that is not a tar: its content is the one "member".
            yield from self._stream(path, fileobj, media_type, depth)
            return
        try:
            archive = tarfile.open(fileobj=fileobj, mode="r|*")  # noqa: SIM115 - closed below
        except _READ_ERRORS as exc:
            yield _error(path, "corrupt_archive", f"cannot open the tar archive: {exc}", False)
            return
        try:
            with archive:
                for info in archive:
                    if self.budget.exhausted:
                        return
                    if not info.isfile():
                        continue  # folders, links and devices carry no content of their own
                    name = _join(path, info.name)
                    if refusal := self._refuse(info.size, None):
                        yield _error(name, "archive_bomb", refusal)
                        continue
                    done = self._done(name, info.size)
                    if done is not None and done.media_type not in ARCHIVE_TYPES:
                        yield Resumed(done)
                        continue
                    member = archive.extractfile(info)
                    data = self._read(member) if member is not None else b""
                    yield from self._member(name, data, depth, done)
        except _READ_ERRORS as exc:
            yield _error(path, "corrupt_archive", f"the tar archive is damaged: {exc}", False)

    def _stream(
        self, path: str, fileobj: BinaryIO, media_type: str, depth: int
    ) -> Iterator[WalkItem]:
        last = path.rsplit(MEMBER_SEPARATOR, 1)[-1].replace("\\", "/").rsplit("/", 1)[-1]
        stem = last
        for suffix in _SUFFIXES[media_type]:
            if last.lower().endswith(suffix) and len(last) > len(suffix):
                stem = last[: -len(suffix)] + (".tar" if suffix.startswith(".t") else "")
                break
        name = _join(path, stem if stem != last else "content")
        try:
            fileobj.seek(0)
            with _decompress(media_type, fileobj) as stream:
                data = self._read(stream)
        except _READ_ERRORS as exc:
            yield _error(path, "corrupt_archive", f"cannot decompress: {exc}", False)
            return
        done = self._done(name, len(data)) if data is not None else None
        yield from self._member(name, data, depth, done)

    # -- members --------------------------------------------------------------------------

    def _member(
        self, name: str, data: bytes | None, depth: int, done: ItemRecord | None
    ) -> Iterator[WalkItem]:
        if data is None:
            yield _error(
                name,
                "archive_bomb",
                f"expands past {self._cap():,} bytes (max_archive_member_bytes, or the "
                "archive's total allowance of max_archive_ratio times its size)",
            )
            return
        if not data:
            yield Problem(name, "skipped", "empty", "empty file (0 bytes)", on_disk=False)
            return
        media_type = sniff(data[:HEAD_BYTES])
        if done is not None:
            yield Resumed(done)
        else:
            yield HashTask(name, len(data), self.mtime_ns, media_type, data=data, on_disk=False)
        if media_type not in ARCHIVE_TYPES:
            return
        if depth >= self.limits.max_depth:
            yield Problem(
                name,
                "skipped",
                "too_deep",
                f"archive nested more than {self.limits.max_depth} deep: digests checked, "
                "members not read",
                on_disk=False,
            )
            return
        inner = io.BytesIO(data)
        if media_type == "zip":
            yield from self.zip(name, inner, depth + 1)
        else:
            yield from self.tar(name, inner, media_type, depth + 1)

    def _cap(self) -> int:
        return min(self.limits.max_member_bytes, self.budget.left)

    def _read(self, member: _Readable) -> bytes | None:
        """The member's bytes, or None when it expands past the member or total limit."""
        cap = self._cap()
        data = member.read(cap + 1)
        if len(data) > cap:
            if cap == self.budget.left:
                self.budget.exhausted = True
            return None
        self.budget.left -= len(data)
        return data

    def _refuse(self, size: int, compressed: int | None) -> str | None:
        if size > self.limits.max_member_bytes:
            return (
                f"declares {size:,} bytes, over max_archive_member_bytes "
                f"({self.limits.max_member_bytes:,}): not read"
            )
        ratio = self.limits.max_ratio
        if compressed is not None and size > RATIO_FLOOR and size > max(compressed, 1) * ratio:
            return (
                f"expands {size // max(compressed, 1):,} times ({compressed:,} -> "
                f"{size:,} bytes), over max_archive_ratio ({ratio}): not read"
            )
        return None

    def _done(self, name: str, size: int) -> ItemRecord | None:
        return self.previous(name, size, self.mtime_ns) if self.previous else None


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def is_tar_header(block: bytes) -> bool:
    """Whether ``block`` is a tar header: 512 bytes, not all zero, with a valid checksum.

    Only this tells a tar from other content. tarfile reads a leading zero block as the end of
    an (empty) archive, so a compressed file whose content merely starts with 512 zero bytes
    would otherwise pass for an empty tar and its content never be hashed.
    """
    if len(block) < tarfile.BLOCKSIZE:
        return False
    try:
        tarfile.TarInfo.frombuf(block[: tarfile.BLOCKSIZE], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def _holds_tar(fileobj: BinaryIO, media_type: str) -> bool:
    """Whether a gzip/bzip2/xz stream decompresses to a tar (judged by its first header).
    Leaves ``fileobj`` at the start; a stream that cannot be read is not a tar (and is then
    reported by the attempt to decompress it)."""
    try:
        with _decompress(media_type, fileobj) as stream:
            head = stream.read(tarfile.BLOCKSIZE)
    except _READ_ERRORS:
        head = b""
    finally:
        fileobj.seek(0)
    return is_tar_header(head)


def _decompress(media_type: str, fileobj: BinaryIO) -> gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile:
    if media_type == "gzip":
        return gzip.GzipFile(fileobj=fileobj, mode="rb")
    if media_type == "bzip2":
        return bz2.BZ2File(fileobj, mode="rb")
    return lzma.LZMAFile(fileobj, mode="rb")


def _join(archive: str, member: str) -> str:
    return f"{archive}{MEMBER_SEPARATOR}{member}"


def _error(path: str, code: str, message: str, is_file: bool = True) -> Problem:
    return Problem(path, "error", code, message, is_file=is_file, on_disk=False)
