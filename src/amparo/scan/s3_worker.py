"""The worker side of scanning buckets (see :mod:`amparo.scan.s3`): read an object once,
streamed, and hash it with the code that hashes files on disk
(:func:`amparo.scan.worker.hash_task`); expand it there when it is an archive. Nothing is
ever written to a bucket.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, BinaryIO, Protocol, cast

from amparo.errors import AmparoError
from amparo.media.sniff import ARCHIVE_TYPES, HEAD_BYTES, sniff
from amparo.scan.archives import ExpansionBudget, expand
from amparo.scan.model import (
    HashLimits,
    HashOutcome,
    HashTask,
    Problem,
    S3Options,
    WorkerItem,
)
from amparo.scan.s3 import (
    Body,
    client,
    default_archive_limits,
    error_code,
    etag_of,
    ns_of,
    scrub,
    spool_body,
)

_NO_KEY = ("NoSuchKey", "404", "NotFound")


class HashOne(Protocol):
    """:func:`amparo.scan.worker.hash_task`, handed in by the worker (which imports this
    module): one hashing implementation for files, members and objects, and no import cycle."""

    def __call__(
        self, task: HashTask, limits: HashLimits, source: BinaryIO | None = None
    ) -> HashOutcome: ...


def hash_object(task: HashTask, limits: HashLimits, hash_task: HashOne) -> list[WorkerItem]:
    """Read one object (streamed) and hash it; when it is an archive, its members' outcomes
    and problems follow its own outcome. Runs in a worker. The object is read once: images
    within ``max_file_bytes`` into memory, larger ones digested as they stream; videos and
    archives spooled to an anonymous temporary file (their readers seek), within
    ``video_max_file_bytes`` and ``max_spool_bytes`` (larger ones digested as they stream)."""
    obj = task.obj
    assert obj is not None
    try:
        response = client(limits.s3 or S3Options()).get_object(Bucket=obj.bucket, Key=obj.key)
    except Exception as exc:
        return [_read_error(task, exc)]
    body = Body(response["Body"])
    task = _as_read(task, response)
    try:
        with body:
            head = body.read(HEAD_BYTES)
            task = replace(task, media_type=sniff(head))
            body.push(head)
            if task.media_type in ARCHIVE_TYPES:
                return _hash_archive(task, body, limits, hash_task)
            if task.media_type == "video":
                if task.size > limits.video_max_file_bytes:
                    return [hash_task(task, limits, source=cast(BinaryIO, body))]
                with spool_body(body, limits.video_max_file_bytes) as spool:
                    return [hash_task(task, limits, source=cast(BinaryIO, spool))]
            data = body.read(limits.max_file_bytes + 1)
            if len(data) <= limits.max_file_bytes:
                return [hash_task(replace(task, size=len(data), data=data), limits)]
            body.push(data)  # over the limit: digested as it streams, never held whole
            too_big = replace(task, size=max(task.size, len(data)))
            return [hash_task(too_big, limits, source=cast(BinaryIO, body))]
    except Exception as exc:
        return [_read_error(task, exc)]


def _hash_archive(
    task: HashTask, body: Body, limits: HashLimits, hash_task: HashOne
) -> list[WorkerItem]:
    """The archive's own outcome (digests), then its members', read from one spooled copy."""
    archives = limits.archives or default_archive_limits()
    assert task.media_type is not None
    if task.size > limits.max_spool_bytes:
        return [_digested_only(task, body, limits, hash_task)]
    items: list[WorkerItem] = []
    with spool_body(body, limits.max_spool_bytes) as spool:
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


def _digested_only(
    task: HashTask, body: Body, limits: HashLimits, hash_task: HashOne
) -> HashOutcome:
    """An archive too large to copy to the worker's disk: its digests, as it streams, and a
    report that its members were not checked (a bucket's writer must not fill the disk)."""
    outcome = hash_task(task, limits, source=cast(BinaryIO, body))
    if outcome.status != "ok":
        return outcome
    return replace(
        outcome,
        status="skipped",
        code="too_large",
        message=f"{task.size:,} bytes is over s3_max_spool_bytes ({limits.max_spool_bytes:,}): "
        "the archive was digested, not opened (raise s3_max_spool_bytes to check its members)",
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
        message = scrub(f"cannot read the object: {type(exc).__name__}: {exc}")
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
