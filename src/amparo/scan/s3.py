"""Objects in S3-compatible buckets as a scan source (``amparo scan s3://bucket/prefix``).

The driver lists objects (never reads them); the worker that hashes an object reads it once,
streamed, and expands it there when it is an archive. Nothing is ever written to a bucket.
The journal keys each object by bucket, key and ETag, so a resumed scan skips what is done
and re-reads what changed. Credentials come from boto3's usual chain on each node (AWS
environment variables, a profile, an instance role); only the endpoint, region and profile
name travel with the tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from amparo.errors import InputError
from amparo.scan.archives import WalkItem
from amparo.scan.model import HashLimits, HashTask, ItemRecord, ObjectRef, S3Options, WorkerItem

S3_SCHEME = "s3://"


class PreviousObject(Protocol):
    """Looks up an item done in an earlier run (the journal's ``lookup``): its record, or
    None when it was not done or has changed (size, mtime, or an object's ETag)."""

    def __call__(
        self, path: str, size: int, mtime_ns: int, etag: str | None = None
    ) -> ItemRecord | None: ...


def is_s3_url(text: str) -> bool:
    """Whether a scan root names a bucket or prefix (``s3://bucket[/prefix]``)."""
    return text.lower().startswith(S3_SCHEME)


def parse_s3_url(text: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix``; an :class:`InputError` for a bad one."""
    rest = text[len(S3_SCHEME) :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise InputError(f"{text!r} names no bucket", hint="write s3://BUCKET[/PREFIX]")
    return bucket, prefix


def check_access(urls: Sequence[str], options: S3Options) -> None:
    """Fail before the scan starts, with a clear error, when a bucket cannot be listed (no
    boto3, bad credentials, no such bucket, endpoint unreachable)."""
    raise InputError("scanning buckets is not built yet", hint="scan local paths")


def walk_s3(
    urls: Sequence[str], options: S3Options, previous: PreviousObject | None = None
) -> Iterator[WalkItem]:
    """Yield a task for every object under ``urls`` (a :class:`Resumed` record for one done
    in an earlier run and unchanged, a :class:`Problem` for a URL that names nothing)."""
    raise InputError("scanning buckets is not built yet", hint="scan local paths")


def count_objects(urls: Sequence[str], options: S3Options) -> int:
    """How many objects :func:`walk_s3` will yield (for progress bars; problems ignored)."""
    return 0


def hash_object(task: HashTask, limits: HashLimits) -> list[WorkerItem]:
    """Read one object (streamed) and hash it; when it is an archive, its members' outcomes
    and problems follow its own outcome. Runs in a worker."""
    raise InputError("scanning buckets is not built yet", hint="scan local paths")


def object_media(obj: ObjectRef, member: str | None, options: S3Options) -> Callable[[], bytes]:
    """A function that reads the object (or one member of the archive it is, ``a!b`` for
    nested ones) again: what the action rules get for a match, called only when one acts."""

    def read() -> bytes:
        raise InputError("scanning buckets is not built yet", hint="scan local paths")

    return read
