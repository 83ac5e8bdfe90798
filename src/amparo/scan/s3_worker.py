"""The worker side of scanning buckets (see :mod:`amparo.scan.s3`): read an object once,
streamed, and hash it with the same code as files on disk (:func:`~amparo.scan.worker.hash_task`);
expand it there when it is an archive; read it again, at the version that was hashed, when
an action rule needs its bytes. Nothing is ever written to a bucket.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import IO, Any, BinaryIO, cast

from amparo.config import DEFAULTS
from amparo.errors import AmparoError, StorageError
from amparo.media.sniff import ARCHIVE_TYPES, HEAD_BYTES, sniff
from amparo.scan.archives import ExpansionBudget, expand
from amparo.scan.model import (
    MEMBER_SEPARATOR,
    ArchiveLimits,
    HashLimits,
    HashOutcome,
    HashTask,
    ObjectRef,
    Problem,
    S3Options,
    WorkerItem,
)
from amparo.scan.s3 import S3_SCHEME, client, error_code, etag_of, ns_of
from amparo.scan.worker import hash_task

_SPOOL_CHUNK = 1024 * 1024
_NO_KEY = ("NoSuchKey", "404", "NotFound")


def read_and_hash(task: HashTask, limits: HashLimits) -> list[WorkerItem]:
    """:func:`amparo.scan.s3.hash_object`: the object read once, streamed; spooled to an
    anonymous temporary file only when a reader must seek (videos, archives)."""

    obj = task.obj
    assert obj is not None
    try:
        response = client(limits.s3 or S3Options()).get_object(Bucket=obj.bucket, Key=obj.key)
    except Exception as exc:
        return [_read_error(task, exc)]
    body = _Body(response["Body"])
    task = _as_read(task, response)
    try:
        with body:
            head = body.read(HEAD_BYTES)
            task = replace(task, media_type=sniff(head))
            body.push(head)
            if task.media_type in ARCHIVE_TYPES:
                return _hash_archive(task, body, limits)
            if task.media_type == "video":
                if task.size > limits.video_max_file_bytes:
                    return [hash_task(task, limits, source=cast(BinaryIO, body))]
                with _spool(body) as spool:
                    return [hash_task(task, limits, source=cast(BinaryIO, spool))]
            data = body.read(limits.max_file_bytes + 1)
            if len(data) <= limits.max_file_bytes:
                return [hash_task(replace(task, size=len(data), data=data), limits)]
            body.push(data)  # over the limit: digested as it streams, never held whole
            too_big = replace(task, size=max(task.size, len(data)))
            return [hash_task(too_big, limits, source=cast(BinaryIO, body))]
    except Exception as exc:
        return [_read_error(task, exc)]


def _hash_archive(task: HashTask, body: _Body, limits: HashLimits) -> list[WorkerItem]:
    """The archive's own outcome (digests), then its members', read from one spooled copy."""
    archives = limits.archives or default_archive_limits()
    assert task.media_type is not None
    items: list[WorkerItem] = []
    with _spool(body) as spool:
        fh = cast(BinaryIO, spool)
        items.append(hash_task(task, limits, source=fh))
        fh.seek(0)
        budget = ExpansionBudget(task.size, archives.max_ratio)
        walk = expand(
            task.path, fh, task.media_type, limits=archives, budget=budget, mtime_ns=task.mtime_ns
        )
        for item in walk:
            if isinstance(item, HashTask):
                items.append(hash_task(replace(item, obj=task.obj), limits))
            elif isinstance(item, Problem):
                items.append(item)
        if budget.exhausted:
            items.append(
                Problem(
                    task.path,
                    "error",
                    "archive_bomb",
                    f"expands past {budget.total:,} bytes (max_archive_ratio times its size): "
                    "the rest of the archive was not checked",
                    is_file=False,
                )
            )
    return items


def default_archive_limits() -> ArchiveLimits:
    return ArchiveLimits(
        max_member_bytes=DEFAULTS.max_archive_member_bytes, max_ratio=DEFAULTS.max_archive_ratio
    )


def _as_read(task: HashTask, response: dict[str, Any]) -> HashTask:
    """The task as the object is now: when it changed since it was listed, what was read is
    what the outcome describes (its new ETag, size and time)."""
    assert task.obj is not None
    etag = etag_of(response.get("ETag"))
    if not etag or etag == task.obj.etag:
        return task
    modified = response.get("LastModified")
    return replace(
        task,
        size=int(response.get("ContentLength", task.size)),
        mtime_ns=ns_of(modified) if isinstance(modified, datetime) else task.mtime_ns,
        obj=replace(task.obj, etag=etag),
    )


def _read_error(task: HashTask, exc: Exception) -> HashOutcome:
    code, message = "unreadable", f"cannot read the object: {type(exc).__name__}"
    if isinstance(exc, AmparoError):
        message = f"cannot read the object: {exc.message}"
    elif error_code(exc) in _NO_KEY:
        code, message = "not_found", "the object is gone (deleted since it was listed)"
    elif error_code(exc):
        message = f"cannot read the object: {error_code(exc)}"
    elif str(exc):
        message = f"cannot read the object: {type(exc).__name__}: {exc}"
    return HashOutcome(
        path=task.path,
        size=task.size,
        mtime_ns=task.mtime_ns,
        media_type=task.media_type,
        hashes=None,
        status="error",
        code=code,
        message=message,
        etag=task.etag,
        obj=task.obj,
    )


class _Body:
    """A response stream read once, with bytes already read put back in front (the sniffed
    head, the part of an image read before it proved too large)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.pending = b""

    def push(self, data: bytes) -> None:
        self.pending = data + self.pending

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            data, self.pending = self.pending + self.raw.read(), b""
            return bytes(data)
        out = self.pending[:size]
        self.pending = self.pending[size:]
        while len(out) < size:
            chunk = self.raw.read(size - len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def __enter__(self) -> _Body:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.raw.close()


def _spool(body: _Body) -> IO[bytes]:
    """The object copied to an anonymous temporary file (no name on disk; gone once closed),
    for the readers that seek: video decoders, zip's central directory."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - returned open, closed by the caller
    try:
        while chunk := body.read(_SPOOL_CHUNK):
            spool.write(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


# -- the action rules' copy -----------------------------------------------------------------


def reader(
    obj: ObjectRef, member: str | None, options: S3Options, archives: ArchiveLimits | None
) -> Callable[[], bytes]:
    """:func:`amparo.scan.s3.object_media`."""

    def read() -> bytes:
        url = f"{S3_SCHEME}{obj.bucket}/{obj.key}"
        try:
            args = {"IfMatch": f'"{obj.etag}"'} if obj.etag else {}
            response = client(options).get_object(Bucket=obj.bucket, Key=obj.key, **args)
            body = _Body(response["Body"])
            with body:
                if member is None:
                    return body.read()
                with _spool(body) as spool:
                    return _member_bytes(url, cast(BinaryIO, spool), member, archives)
        except AmparoError:
            raise
        except Exception as exc:
            changed = error_code(exc) in ("PreconditionFailed", "412")
            reason = "it changed since it was hashed" if changed else error_code(exc) or exc
            raise StorageError(
                f"cannot read {url} again for the action rules: {reason}",
                hint="check the object and the credentials; scan it again",
            ) from None

    return read


def _member_bytes(url: str, fh: BinaryIO, member: str, archives: ArchiveLimits | None) -> bytes:
    wanted = f"{url}{MEMBER_SEPARATOR}{member}"
    limits = archives or default_archive_limits()
    depth = member.count(MEMBER_SEPARATOR) + 1
    limits = replace(limits, max_depth=max(limits.max_depth, depth))
    fh.seek(0, 2)
    budget = ExpansionBudget(fh.tell(), limits.max_ratio)
    fh.seek(0)
    media_type = sniff(fh.read(HEAD_BYTES))
    fh.seek(0)
    if media_type in ARCHIVE_TYPES:
        assert media_type is not None
        for item in expand(url, fh, media_type, limits=limits, budget=budget, mtime_ns=0):
            if isinstance(item, HashTask) and item.path == wanted and item.data is not None:
                return item.data
    raise StorageError(
        f"{wanted} is no longer in the object", hint="the object changed; scan it again"
    )
