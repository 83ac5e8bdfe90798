"""Where encrypted evidence blobs live: a directory (the default) or an S3-compatible bucket.

A backend only ever sees ciphertext. Its interface is small: ``put`` a blob atomically (the
key either holds the complete blob or nothing), ``open`` it for reading, ``delete`` it, and
list what is there with its age (so a recovery can tell a crashed write's leftovers from a
write still in progress).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import parse_qs, urlsplit

from amparo.errors import BlobNotFoundError, ConfigError, StorageError
from amparo.files import fsync_dir, private_dir

BLOB_SUFFIX = ".amev"
_TEMP_PREFIX = ".tmp-"
ORPHAN_GRACE_SECONDS = 3600
"""Purge and verify leave a blob that no item owns alone until it is this old: an item's blob
is written before its record, so a young unowned blob may be a write in progress."""


class BlobBackend(Protocol):
    """Storage for encrypted blobs, keyed by ``<2 hex>/<item uuid>.amev``."""

    url: str

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store the blob atomically and durably; return its size in bytes."""
        ...

    def open(self, key: str) -> BinaryIO:
        """Open a blob for reading; raises :class:`BlobNotFoundError`."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove a blob; removing one that is not there is not an error."""
        ...

    def list(self) -> Iterator[tuple[str, float]]:
        """``(key, age in seconds)`` of every blob and of every leftover of an interrupted
        write (keys starting with ``.tmp-`` after the last ``/``)."""
        ...


def blob_key(item_uuid: str) -> str:
    return f"{item_uuid[:2]}/{item_uuid}{BLOB_SUFFIX}"


def uuid_of(key: str) -> str | None:
    """The item uuid a blob key names, or None for anything else (temp files, strangers)."""
    name = key.rsplit("/", 1)[-1]
    if not name.endswith(BLOB_SUFFIX):
        return None
    stem = name[: -len(BLOB_SUFFIX)]
    if len(stem) != 32 or any(c not in "0123456789abcdef" for c in stem):
        return None
    return stem


def is_temp(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith(_TEMP_PREFIX)


def open_backend(url: str, home: Path) -> BlobBackend:
    """The backend named by ``evidence_url``: empty for ``<home>/evidence``, a path or
    ``file://`` URL for a directory, ``s3://bucket/prefix?endpoint=...&region=...``."""
    if not url:
        return FileBackend(home / "evidence")
    parts = urlsplit(url)
    if parts.scheme == "s3":
        return S3Backend.from_url(url)
    if parts.scheme == "file":
        return FileBackend(Path(parts.path))
    if parts.scheme == "":
        return FileBackend(Path(url).expanduser())
    raise ConfigError(
        f"evidence_url {url!r} has an unknown scheme {parts.scheme!r}",
        hint="use a directory path, file:///path or s3://bucket/prefix?endpoint=...",
    )


class FileBackend:
    """Blobs as files under a directory: written to a temp file in the target directory,
    fsynced, renamed into place, and the directory fsynced, so a crash leaves either the
    whole blob or a ``.tmp-`` leftover that recovery removes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        target = self._path(key)
        private_dir(target.parent)
        fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=target.parent)
        size = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
                    size += len(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(target.parent)
        return size

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(
                f"no blob {key} in {self.url}", hint="restore the blob store from backup"
            ) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        fsync_dir(path.parent)

    def list(self) -> Iterator[tuple[str, float]]:
        if not self.root.is_dir():
            return
        now = time.time()
        for sub in sorted(self.root.iterdir()):
            if not sub.is_dir():
                continue
            for path in sorted(sub.iterdir()):
                try:
                    age = now - path.stat().st_mtime
                except FileNotFoundError:
                    continue
                yield f"{sub.name}/{path.name}", age


class S3Backend:
    """Blobs as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph, ...).

    An object appears only when its upload completes, so a crash leaves nothing half
    written (an abandoned multipart upload is invisible; set a bucket lifecycle rule to
    abort those). Credentials come from the usual ``AWS_*`` environment, profile or role.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        url: str = "",
    ) -> None:
        try:
            import boto3
        except ImportError:
            raise ConfigError(
                "an s3:// evidence_url needs boto3", hint="pip install 'amparo[s3]'"
            ) from None
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = url or f"s3://{bucket}/{self.prefix}"
        self._client: Any = boto3.client("s3", endpoint_url=endpoint, region_name=region)

    @classmethod
    def from_url(cls, url: str) -> S3Backend:
        parts = urlsplit(url)
        if not parts.netloc:
            raise ConfigError(
                f"evidence_url {url!r} names no bucket", hint="use s3://bucket/prefix"
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise ConfigError(
                f"evidence_url has unknown parameters: {', '.join(sorted(unknown))}",
                hint="only endpoint= and region= are understood",
            )
        safe = f"s3://{parts.netloc}{parts.path}"
        return cls(
            parts.netloc,
            parts.path,
            endpoint=query.get("endpoint"),
            region=query.get("region"),
            url=safe,
        )

    def _error(self, exc: Exception) -> StorageError:
        return StorageError(
            f"evidence bucket {self.url}: {exc}",
            hint="check evidence_url, the endpoint and the AWS_* credentials",
        )

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        # Spool the ciphertext (never plaintext) so a large blob goes up in parts.
        with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as spool:
            size = 0
            for chunk in chunks:
                spool.write(chunk)
                size += len(chunk)
            spool.seek(0)
            try:
                self._client.upload_fileobj(spool, self.bucket, self.prefix + key)
            except (BotoCoreError, ClientError) as exc:
                raise self._error(exc) from None
        return size

    def open(self, key: str) -> BinaryIO:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise BlobNotFoundError(
                    f"no blob {key} in {self.url}", hint="restore the blob store from backup"
                ) from None
            raise self._error(exc) from None
        except BotoCoreError as exc:
            raise self._error(exc) from None
        stream: BinaryIO = body
        return stream

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise self._error(exc) from None
        except BotoCoreError as exc:
            raise self._error(exc) from None
        return True

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.delete_object(Bucket=self.bucket, Key=self.prefix + key)
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc) from None

    def list(self) -> Iterator[tuple[str, float]]:
        from botocore.exceptions import BotoCoreError, ClientError

        now = time.time()
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    key = obj["Key"][len(self.prefix) :]
                    yield key, now - obj["LastModified"].timestamp()
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc) from None


def new_item_uuid() -> str:
    """A random 128-bit item id (hex): the blob key, unguessable and never reused."""
    return secrets.token_hex(16)
