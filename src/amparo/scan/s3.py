"""Objects in S3-compatible buckets as a scan source (``amparo scan s3://bucket/prefix``).

The driver lists objects (never reads them); the worker that hashes an object reads it once,
streamed, and expands it there when it is an archive. Nothing is ever written to a bucket.
The journal keys each object by bucket, key and ETag, so a resumed scan skips what is done
and re-reads what changed. Credentials come from boto3's usual chain on each node (AWS
environment variables, a profile, an instance role); only the endpoint, region and profile
name travel with the tasks.

This module is the driver's side (listing, early access checks) and the action rules' copy
(:func:`object_media`); :mod:`amparo.scan.s3_worker` reads and hashes objects in workers.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import IO, Any, BinaryIO, Protocol, cast
from urllib.parse import urlsplit, urlunsplit

from amparo.config import DEFAULTS
from amparo.errors import AmparoError, ConfigError, InputError, StorageError
from amparo.media.sniff import ARCHIVE_TYPES, HEAD_BYTES, sniff
from amparo.scan.archives import ExpansionBudget, WalkItem, expand
from amparo.scan.model import (
    MEMBER_SEPARATOR,
    ArchiveLimits,
    HashTask,
    ItemRecord,
    ObjectRef,
    Problem,
    Resumed,
    S3Options,
)

S3_SCHEME = "s3://"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_REFUSED = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken")
_DENIED = ("AccessDenied", "AllAccessDisabled", "403")
_NO_BUCKET = ("NoSuchBucket",)

_SPOOL_CHUNK = 1024 * 1024
_USERINFO = re.compile(r"(?<=//)[^/@\s\"']*@")
# In a displayed key: % (the escape itself), ! (the archive member separator), C0 and DEL.
_KEY_ESCAPES = {c: f"%{c:02X}" for c in (*range(0x20), 0x7F, ord("%"), ord(MEMBER_SEPARATOR))}

_clients: dict[S3Options, Any] = {}
_clients_lock = threading.Lock()


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


def object_path(bucket: str, key: str) -> str:
    """How an object is named in reports and the journal: ``s3://bucket/key`` with ``%``,
    ``!`` and control characters in the key percent-encoded, so that ``s3://b/a.zip!k.jpg``
    can only be member ``k.jpg`` of ``a.zip`` (the object ``a.zip!k.jpg`` is
    ``s3://b/a.zip%21k.jpg``) and no key can forge a line of a report. The real key travels
    in :class:`ObjectRef` for reading."""
    return f"{S3_SCHEME}{bucket}/{key.translate(_KEY_ESCAPES)}"


def safe_endpoint(url: str | None) -> str:
    """An endpoint as it may appear in a message: without user, password and query (a
    ``--s3-endpoint http://user:secret@host`` must not end up in a log or a report)."""
    if not url:
        return "AWS S3"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "the configured S3 endpoint"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def scrub(text: str) -> str:
    """``text`` without any ``user:password@`` in the URLs it quotes (botocore's messages
    name the endpoint as it was given)."""
    return _USERINFO.sub("", text)


def client(options: S3Options) -> Any:
    """The S3 client of this process for ``options`` (one each: boto3 clients are
    thread-safe, and making one costs milliseconds). Raises :class:`ConfigError` when boto3
    is missing or the profile does not exist."""
    with _clients_lock:
        found = _clients.get(options)
        if found is None:
            found = _clients[options] = _new_client(options)
        return found


def forget_clients() -> None:
    """Drop the cached clients (their credentials were read when they were made)."""
    with _clients_lock:
        _clients.clear()


def _new_client(options: S3Options) -> Any:
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import ProfileNotFound
    except ImportError:
        raise ConfigError(
            "scanning s3:// paths needs boto3", hint="pip install 'amparo[s3]'"
        ) from None
    try:
        session = boto3.session.Session(profile_name=options.profile, region_name=options.region)
    except ProfileNotFound:
        raise ConfigError(
            f"no AWS profile named {options.profile!r}",
            hint="set s3_profile to a profile in ~/.aws/config on every node, or leave it empty",
        ) from None
    config = Config(connect_timeout=10, read_timeout=60, retries={"mode": "standard"})
    return session.client("s3", endpoint_url=options.endpoint_url, config=config)


def check_access(urls: Sequence[str], options: S3Options) -> None:
    """Fail before the scan starts, with a clear error, when a bucket cannot be listed (no
    boto3, bad credentials, no such bucket, endpoint unreachable)."""
    s3 = client(options)
    for bucket, prefix in dict.fromkeys(parse_s3_url(u) for u in urls):
        try:
            s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        except Exception as exc:
            raise access_error(exc, bucket, options) from None


def access_error(exc: Exception, bucket: str, options: S3Options) -> AmparoError:
    """What went wrong reaching ``bucket``, said plainly (never with a secret in it)."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    where = safe_endpoint(options.endpoint_url)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ConfigError(
            f"no AWS credentials found to read s3://{bucket}",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or s3_profile, or an "
            "instance role) on every node that scans",
        )
    if isinstance(exc, EndpointConnectionError):
        return ConfigError(
            f"cannot reach the S3 endpoint {where}",
            hint="check --s3-endpoint (the s3_endpoint setting) and the network",
        )
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _REFUSED:
            return ConfigError(
                f"{where} refused the AWS credentials ({code}) for s3://{bucket}",
                hint="check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or s3_profile",
            )
        if code in _DENIED:
            return ConfigError(
                f"access denied listing s3://{bucket} ({code})",
                hint="the credentials need s3:ListBucket and s3:GetObject on the bucket",
            )
        if code in _NO_BUCKET or code == "404":
            return InputError(
                f"no bucket named {bucket!r} at {where}",
                hint="check the bucket's name, --s3-endpoint and s3_region",
            )
        return InputError(
            f"cannot list s3://{bucket}: {code or scrub(str(exc))}", hint="check the URL"
        )
    if isinstance(exc, AmparoError):
        return exc
    return ConfigError(
        f"cannot list s3://{bucket} at {where}: {type(exc).__name__}",
        hint="check --s3-endpoint (the s3_endpoint setting), s3_region and the network",
    )


def walk_s3(
    urls: Sequence[str], options: S3Options, previous: PreviousObject | None = None
) -> Iterator[WalkItem]:
    """Yield a task for every object under ``urls`` (a :class:`Resumed` record for one done
    in an earlier run and unchanged, a :class:`Problem` for a URL that names nothing)."""
    s3 = client(options)
    for url in urls:
        bucket, prefix = parse_s3_url(url)
        found = False
        try:
            for listed in _list(s3, bucket, prefix):
                found = True
                yield from _object_item(bucket, listed, previous)
        except Exception as exc:
            message = access_error(exc, bucket, options).message
            yield Problem(url, "error", "unreadable", f"cannot list: {message}", is_file=False)
            continue
        if not found:
            yield Problem(
                url, "error", "not_found", "no object or prefix by this name", is_file=False
            )


def count_objects(urls: Sequence[str], options: S3Options) -> int:
    """How many objects :func:`walk_s3` will yield (for progress bars; problems ignored)."""
    count = 0
    try:
        s3 = client(options)
        for url in urls:
            bucket, prefix = parse_s3_url(url)
            count += sum(1 for _ in _list(s3, bucket, prefix))
    except Exception:
        pass  # the walk reports what cannot be listed
    return count


def _list(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    """Objects under ``prefix`` taken as a folder: ``photos`` lists the object ``photos``
    and ``photos/...``, not ``photos2/...``. Folder markers (``x/``, empty) are left out."""
    folder = prefix
    if prefix and not prefix.endswith("/"):
        # The object named exactly like the prefix sorts first among keys starting with it.
        first = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("Contents", [])
        if first and first[0]["Key"] == prefix:
            yield first[0]
        folder = prefix + "/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
        for listed in page.get("Contents", []):
            if not (listed["Key"].endswith("/") and listed.get("Size", 0) == 0):
                yield listed


def _object_item(
    bucket: str, listed: dict[str, Any], previous: PreviousObject | None
) -> Iterator[WalkItem]:
    key = str(listed["Key"])
    path = object_path(bucket, key)
    size, mtime_ns = int(listed.get("Size", 0)), ns_of(listed["LastModified"])
    etag = etag_of(listed.get("ETag"))
    done = previous(path, size, mtime_ns, etag) if previous else None
    if done is not None and done.media_type not in ARCHIVE_TYPES:
        yield Resumed(done)  # an archive is read again: its members are not listed
        return
    if size == 0:
        yield Problem(path, "skipped", "empty", "empty file (0 bytes)")
        return
    yield HashTask(path, size, mtime_ns, None, obj=ObjectRef(bucket, key, etag))


def ns_of(when: datetime) -> int:
    """An object's LastModified as the journal's mtime_ns (exact: no float on the way)."""
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


def etag_of(value: object) -> str:
    """An ETag as S3 sends it (in quotes) without the quotes."""
    return str(value or "").strip('"')


def error_code(exc: Exception) -> str:
    """The S3 error code of a botocore ``ClientError`` (empty for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


# -- reading objects (the worker's side is amparo.scan.s3_worker) -------------------------


def default_archive_limits() -> ArchiveLimits:
    """Archive guards when none were passed on (the settings' defaults)."""
    return ArchiveLimits(
        max_member_bytes=DEFAULTS.max_archive_member_bytes, max_ratio=DEFAULTS.max_archive_ratio
    )


class Body:
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

    def __enter__(self) -> Body:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.raw.close()


def spool_body(body: Body, limit: int) -> IO[bytes]:
    """The object copied to an anonymous temporary file (no name on disk; gone once closed),
    for the readers that seek: video decoders, zip's central directory. Callers check the
    declared size first; ``limit`` also stops a stream longer than declared (StorageError)."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - returned open, closed by the caller
    try:
        written = 0
        while chunk := body.read(_SPOOL_CHUNK):
            written += len(chunk)
            if written > limit:
                raise StorageError(
                    f"the object is longer than the {limit:,} bytes allowed on temporary disk",
                    hint="raise s3_max_spool_bytes (archives) or video_max_file_bytes (videos)",
                )
            spool.write(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


# -- the action rules' copy -----------------------------------------------------------------


def object_media(
    obj: ObjectRef,
    member: str | None,
    options: S3Options,
    archives: ArchiveLimits | None = None,
    max_file_bytes: int = DEFAULTS.max_file_bytes,
    max_spool_bytes: int = DEFAULTS.s3_max_spool_bytes,
) -> Callable[[], bytes]:
    """A function that reads the object (or one member of the archive it is, ``a!b`` for
    nested ones) again: what the action rules get for a match, called only when one acts.
    Reads the version that was hashed (its ETag) or raises :class:`StorageError`.

    The rules get bytes, so the copy is bounded: an object over ``max_file_bytes`` (or an
    archive over ``max_spool_bytes``, the member's archive copied to temporary disk) is not
    read, and the :class:`StorageError` says so (the rules run without media)."""

    def read() -> bytes:
        url = object_path(obj.bucket, obj.key)
        try:
            args = {"IfMatch": f'"{obj.etag}"'} if obj.etag else {}
            response = client(options).get_object(Bucket=obj.bucket, Key=obj.key, **args)
            body = Body(response["Body"])
            with body:
                size = int(response.get("ContentLength") or 0)
                limit, name = (
                    (max_file_bytes, "max_file_bytes")
                    if member is None
                    else (max_spool_bytes, "s3_max_spool_bytes")
                )
                if size > limit:
                    raise _too_large(url, size, limit, name)
                if member is None:
                    data = body.read(limit + 1)
                    if len(data) > limit:
                        raise _too_large(url, len(data), limit, name)
                    return data
                with spool_body(body, limit) as spool:
                    return _member_bytes(url, cast(BinaryIO, spool), member, archives)
        except AmparoError:
            raise
        except Exception as exc:
            changed = error_code(exc) in ("PreconditionFailed", "412")
            reason = "it changed since it was hashed" if changed else error_code(exc)
            reason = reason or scrub(f"{type(exc).__name__}: {exc}")
            raise StorageError(
                f"cannot read {url} again for the action rules: {reason}",
                hint="check the object and the credentials; scan it again",
            ) from None

    return read


def _too_large(url: str, size: int, limit: int, name: str) -> StorageError:
    return StorageError(
        f"{url} ({size:,} bytes) is over {name} ({limit:,}): not read again for the action "
        "rules, nothing preserved",
        hint=f"raise {name} to preserve objects this large, or copy it from the bucket",
    )


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
