"""Hashing stage: a pure function from a batch of tasks to their outcomes.

Runs in worker processes (or in-process with one worker); imports nothing that touches the
store. Per-file problems become outcomes with a status, never exceptions.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import BinaryIO

from amparo.hashing import (
    MediaHashes,
    hash_media,
    hash_video_media,
    hashes_from_digests,
    video_max_pixels,
)
from amparo.media.sniff import ARCHIVE_TYPES, IMAGE_TYPES
from amparo.scan.model import HashLimits, HashOutcome, HashTask, Status, WorkerItem
from amparo.signals.digests import FileDigests, digest_bytes, digest_source, digest_stream

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
)
_DIGEST_ONLY = ARCHIVE_TYPES


def hash_batch(tasks: list[HashTask], limits: HashLimits) -> list[WorkerItem]:
    """Hash every task of a batch; one outcome per task, in order (an object in a bucket
    that is an archive is followed by its members' outcomes and problems). An unexpected
    failure on one file (a decoder library raising something unforeseen) is that file's
    error, not the batch's. Every engine runs this same function."""
    outcomes: list[WorkerItem] = []
    for task in tasks:
        try:
            if task.obj is not None:
                from amparo.scan.s3_worker import hash_object

                outcomes.extend(hash_object(task, limits, hash_task))
            else:
                outcomes.append(hash_task(task, limits))
        except Exception as exc:
            message = f"hashing failed: {type(exc).__name__}: {exc}"
            outcomes.append(_outcome(task, None, "error", "hash_failed", message))
    return outcomes


def hash_task(task: HashTask, limits: HashLimits, source: BinaryIO | None = None) -> HashOutcome:
    """Digest the content (always); PDQ-hash it when it is an image small enough to decode,
    vPDQ-hash it when it is a video within the video limits.

    ``source``, when given, is read instead of ``task.fs_path``: an object in a bucket, read
    once by :mod:`amparo.scan.s3` (a spooled file, or the response stream itself when the
    content is over a limit and only digested; seekable otherwise)."""
    if task.media_type == "video":
        return _hash_video(task, limits, source)
    too_big = task.size > limits.max_file_bytes
    try:
        if task.data is not None:
            data: bytes | None = task.data
            digests = digest_bytes(task.data) if too_big else None
        else:
            stream = too_big or task.media_type in _DIGEST_ONLY
            data, digests = _read(task, limits, stream=stream, source=source)
    except OSError as exc:
        return _outcome(task, None, "error", "unreadable", f"cannot read: {exc.strerror or exc}")

    if digests is not None or data is None or task.media_type in _DIGEST_ONLY:
        digests = digests or digest_bytes(data or b"")
        hashes = hashes_from_digests(digests, task.media_type)
        if digests.size > limits.max_file_bytes and task.media_type not in _DIGEST_ONLY:
            return _outcome(
                task,
                hashes,
                "skipped",
                "too_large",
                f"{digests.size:,} bytes is over max_file_bytes "
                f"({limits.max_file_bytes:,}): digests checked, not decoded",
            )
        return _outcome(task, hashes, "ok")

    hashes = hash_media(
        data,
        max_pixels=limits.max_pixels,
        dihedral=limits.dihedral,
        mirror=limits.mirror,
        trim=limits.trim,
        max_memory=limits.max_decode_memory,
    )
    if hashes.error is None:
        return _outcome(task, hashes, "ok")
    if hashes.media_type in IMAGE_TYPES:
        return _outcome(task, hashes, "error", "bad_image", hashes.error)
    if _named_like_image(task.path):
        kind = hashes.media_type or "unrecognised content"
        return _outcome(
            task,
            hashes,
            "error",
            "not_an_image",
            f"named like an image but its content is not one ({kind}); digests checked",
        )
    hashes.error = None  # not an image and not claiming to be one: digests are all there is
    return _outcome(task, hashes, "ok")


def _hash_video(task: HashTask, limits: HashLimits, source: BinaryIO | None) -> HashOutcome:
    """vPDQ of a video, streamed from disk (or from an archive member's bytes, or from an
    object's spooled copy), one decoder thread: the worker processes are the parallelism."""
    if task.size > limits.video_max_file_bytes:
        try:
            if source is not None:  # maybe a response stream: read through once, no seeking
                digests = digest_stream(source)
            else:
                digests = digest_source(task.data if task.data is not None else _fs_path(task))
        except OSError as exc:
            return _outcome(
                task, None, "error", "unreadable", f"cannot read: {exc.strerror or exc}"
            )
        return _outcome(
            task,
            hashes_from_digests(digests, task.media_type),
            "skipped",
            "too_large",
            f"{digests.size:,} bytes is over video_max_file_bytes "
            f"({limits.video_max_file_bytes:,}): digests checked, not decoded",
        )
    from amparo.media.video import VideoLimits

    video_limits = VideoLimits(
        max_file_size=limits.video_max_file_bytes,
        max_duration_seconds=limits.video_max_duration_seconds,
        timeout_seconds=limits.video_timeout_seconds,
        max_pixels=video_max_pixels(limits.max_decode_memory, VideoLimits.max_pixels),
    )
    video: bytes | str | BinaryIO | None = task.data if task.data is not None else task.fs_path
    video = source if source is not None else video
    assert video is not None
    try:
        hashes = hash_video_media(
            video, sample_fps=limits.video_sample_fps, limits=video_limits, threads=1
        )
    except OSError as exc:
        return _outcome(task, None, "error", "unreadable", f"cannot read: {exc.strerror or exc}")
    if hashes.error is not None:
        return _outcome(task, hashes, "error", "bad_video", f"{hashes.error}; digests checked")
    return _outcome(task, hashes, "ok")


def _fs_path(task: HashTask) -> str:
    assert task.fs_path is not None
    return task.fs_path


def _read(
    task: HashTask, limits: HashLimits, *, stream: bool, source: BinaryIO | None = None
) -> tuple[bytes | None, FileDigests | None]:
    if source is not None:
        return _read_from(source, limits, stream=stream)
    assert task.fs_path is not None
    with open(task.fs_path, "rb") as fh:
        return _read_from(fh, limits, stream=stream)


def _read_from(
    fh: BinaryIO, limits: HashLimits, *, stream: bool
) -> tuple[bytes | None, FileDigests | None]:
    if stream:
        return None, digest_stream(fh)
    # Read at most one byte past the limit: a file growing under us is not decoded either.
    data = fh.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        fh.seek(0)
        return None, digest_stream(fh)
    return data, None


def _named_like_image(path: str) -> bool:
    last = path.rsplit("!", 1)[-1]
    return PurePosixPath(last.replace("\\", "/")).suffix.lower() in IMAGE_SUFFIXES


def _outcome(
    task: HashTask,
    hashes: MediaHashes | None,
    status: Status,
    code: str | None = None,
    message: str | None = None,
) -> HashOutcome:
    return HashOutcome(
        path=task.path,
        size=hashes.size if hashes is not None else task.size,
        mtime_ns=task.mtime_ns,
        media_type=(hashes.media_type if hashes is not None else None) or task.media_type,
        hashes=hashes,
        status=status,
        code=code,
        message=message,
        on_disk=task.on_disk,
        etag=task.etag,
        obj=task.obj,
    )
