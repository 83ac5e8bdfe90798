"""The plain data a scan passes between its stages: tasks for the hashing workers, their
outcomes, the per-item records the journal and the report keep, and problems the walk finds.

Everything here is a small dataclass that pickles cheaply (tasks and outcomes cross process
boundaries) and turns into JSON explicitly (records are persisted; never pickled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from amparo.config import DEFAULTS
from amparo.errors import FormatError
from amparo.hashing import MediaHashes
from amparo.scan.paths import display_path, path_fields, path_from_fields

Status = Literal["ok", "error", "skipped"]

MEMBER_SEPARATOR = "!"
"""Joins an archive's path and a member's path: ``a.zip!inner/b.zip!c.jpg``."""


@dataclass(frozen=True)
class HashLimits:
    """What a hashing worker needs to know; passed to every batch (a pure function's input)."""

    max_pixels: int
    max_file_bytes: int
    dihedral: bool = False
    mirror: bool = DEFAULTS.match_mirrored
    """Also hash the mirrored picture (``match_mirrored``)."""
    trim: bool = DEFAULTS.trim_borders
    """Also hash the picture with borders and bars trimmed (``trim_borders``)."""
    video_sample_fps: float = DEFAULTS.video_sample_fps
    """Frames a second hashed (vPDQ) from each video."""
    video_max_file_bytes: int = DEFAULTS.video_max_file_bytes
    """Videos are streamed from disk, so ``max_file_bytes`` does not apply; larger ones are
    digested only."""
    video_max_duration_seconds: float = DEFAULTS.video_max_duration_seconds
    video_timeout_seconds: float = DEFAULTS.video_timeout_seconds
    max_decode_memory: int = DEFAULTS.max_decode_memory
    s3: S3Options | None = None
    """How workers reach object stores (endpoint, region, profile; never credentials)."""
    archives: ArchiveLimits | None = None
    """Guards for archives a worker opens itself (objects in a bucket are read only there)."""
    max_spool_bytes: int = DEFAULTS.s3_max_spool_bytes
    """Archive objects are copied to the worker's temporary disk to be opened; larger ones
    are digested as they stream, not opened (a bucket's writer must not fill the disk)."""


@dataclass(frozen=True)
class S3Options:
    """Where a bucket is: what a worker needs to open a client. Credentials are never carried
    here: each node finds its own (AWS environment variables, a profile, an instance role)."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class ArchiveLimits:
    """Guards for reading inside archives (see :mod:`amparo.scan.archives`)."""

    max_member_bytes: int
    max_ratio: int
    max_depth: int = 5
    """How many archives deep to look (1: members of archives on disk, not archives inside)."""


@dataclass(frozen=True)
class ObjectRef:
    """One object in a bucket, as listed: read by the worker that hashes it."""

    bucket: str
    key: str
    etag: str


@dataclass
class HashTask:
    """One file or archive member to hash. Exactly one of ``fs_path`` and ``data`` is set."""

    path: str
    """Display path: a file path, or ``archive!member`` for archive members. A name that is
    not UTF-8 holds its bytes as surrogates (``os.fsdecode``); see :mod:`amparo.scan.paths`."""
    size: int
    mtime_ns: int
    """The file's mtime; for archive members, the mtime of the archive file on disk."""
    media_type: str | None = None
    """Type sniffed from the first bytes (None: not a type Amparo knows)."""
    fs_path: str | None = None
    data: bytes | None = None
    on_disk: bool = True
    """False for archive members (used for progress: the pre-walk counts files on disk)."""
    obj: ObjectRef | None = None
    """An object in a bucket (``path`` is then ``s3://bucket/key``); neither ``fs_path`` nor
    ``data`` is set: the worker reads it, and expands it there when it is an archive."""

    @property
    def etag(self) -> str | None:
        return self.obj.etag if self.obj is not None else None


@dataclass
class HashOutcome:
    """What hashing one task produced. ``hashes`` is None only when nothing could be read."""

    path: str
    size: int
    mtime_ns: int
    media_type: str | None
    hashes: MediaHashes | None
    status: Status = "ok"
    code: str | None = None
    message: str | None = None
    on_disk: bool = True
    etag: str | None = None
    """For objects in a bucket (and members of archives in them): the object's ETag."""
    obj: ObjectRef | None = None
    """The object in a bucket this is (or is a member of), to read it again for the rules."""


@dataclass
class ItemRecord:
    """The lasting result for one file or member: what the journal and the report keep.

    Holds no hash of non-matching content: ``hashes`` is filled only when something matched.
    """

    path: str
    size: int
    mtime_ns: int
    media_type: str | None
    status: Status
    code: str | None = None
    message: str | None = None
    matches: list[dict[str, object]] = field(default_factory=list)
    """``Match.to_json()`` of each match."""
    hashes: dict[str, str] = field(default_factory=dict)
    """The matched content's own signals (md5, sha1, sha256, pdq; not a video's vpdq, which
    runs to kilobytes), for the report."""
    hashed: bool = True
    """Whether digests were computed (false when the content could not be read)."""
    on_disk: bool = True
    etag: str | None = None
    """For objects in a bucket (and members of archives in them): the object's ETag, so a
    resumed scan re-reads an object that changed."""

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            **path_fields(self.path),  # + path_b64 (exact bytes) for a name that is not UTF-8
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "media_type": self.media_type,
            "status": self.status,
            "hashed": self.hashed,
        }
        if not self.on_disk:
            data["on_disk"] = False
        if self.etag is not None:
            data["etag"] = self.etag
        if self.code is not None:
            data["code"] = self.code
        if self.message is not None:
            data["message"] = display_path(self.message)  # may quote a name that is not UTF-8
        if self.matches:
            data["matches"] = self.matches
            data["hashes"] = self.hashes
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ItemRecord:
        """A journal line read back; raises :class:`FormatError` (or ``KeyError``, or what
        ``int()`` raises) for a damaged line, which the journal skips."""
        status = str(data["status"])
        if status not in ("ok", "error", "skipped"):
            raise FormatError(f"unknown status {status!r}")
        matches = data.get("matches") or []
        hashes = data.get("hashes") or {}
        if not isinstance(matches, list) or not isinstance(hashes, dict):
            raise FormatError("matches must be a list and hashes an object")
        media_type = data.get("media_type")
        return cls(
            path=path_from_fields(data),
            size=_int(data["size"]),
            mtime_ns=_int(data["mtime_ns"]),
            media_type=None if media_type is None else str(media_type),
            status=status,  # type: ignore[arg-type]  # checked above
            code=_opt_str(data.get("code")),
            message=_opt_str(data.get("message")),
            matches=[dict(m) for m in matches if isinstance(m, dict)],
            hashes={str(k): str(v) for k, v in hashes.items()},
            hashed=bool(data.get("hashed", True)),
            on_disk=bool(data.get("on_disk", True)),
            etag=_opt_str(data.get("etag")),
        )


@dataclass(frozen=True)
class Problem:
    """Something the walk found wrong or chose to skip (not hashed, so not journaled):
    an unreadable folder, a symlink loop, a zip bomb, an encrypted member, an empty file."""

    path: str
    status: Literal["error", "skipped"]
    code: str
    message: str
    is_file: bool = True
    """False for folders and whole archives that could not be listed."""
    on_disk: bool = True


WorkerItem = HashOutcome | Problem
"""What the hashing stage gives back: an outcome per task, in order; after the outcome of an
object in a bucket that is an archive, the outcomes and problems of its members (a worker
expands such an archive itself: the object is read once, there)."""


@dataclass(frozen=True)
class Resumed:
    """An item already done in an earlier run of the same scan (found in the journal)."""

    record: ItemRecord


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FormatError(f"expected a number, got {value!r}")
    return int(value)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
