"""What the HMA-compatible routes share: signal type selection, uploads and URL media."""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from amparo.api.media import fetch_media, hash_media_bytes, hash_upload, upload_from_form
from amparo.api.service import Service
from amparo.errors import InputError
from amparo.hashing import MediaHashes
from amparo.keys import ApiKey
from amparo.media.sniff import MEDIA_KINDS

# HMA names the perceptual photo hash "pdq", the video hash "vpdq" and the file digest of
# video "video_md5"; Amparo computes md5 (and sha1, sha256) for every file. Amparo's vpdq value
# is its compact one-line form (vpdq1:...), which Amparo's lookups take back.
PHOTO_TYPES = ("pdq", "md5")
VIDEO_TYPES = ("vpdq", "md5")
ALL_TYPES = ("pdq", "md5", "sha1", "sha256", "vpdq")
CONTENT_TYPES = MEDIA_KINDS
"""HMA's ``content_type`` parameter names a media kind."""

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"photo": {"type": "string", "format": "binary"}},
                    "required": ["photo"],
                }
            }
        },
    }
}


def signal_types(types: str | None, content_type: str | None) -> tuple[str, ...] | None:
    """The signal types asked for; None: those of the content (photo or video)."""
    if content_type is not None and content_type not in CONTENT_TYPES:
        raise InputError(f"no such content_type: {content_type!r}", hint="use photo or video")
    if types is None:
        return None
    chosen = tuple(t.strip() for t in types.split(",") if t.strip())
    for name in chosen:
        if name not in ALL_TYPES:
            raise InputError(
                f"signal type {name!r} doesn't exist or is disabled",
                hint="known: " + ", ".join(ALL_TYPES),
            )
    if not chosen:
        raise InputError("empty signal type selection")
    return chosen


def hashes_of(data: bytes, service: Service, wanted: tuple[str, ...] | None) -> dict[str, str]:
    return chosen_signals(hash_media_bytes(data, service), wanted)


def chosen_signals(hashes: MediaHashes, wanted: tuple[str, ...] | None) -> dict[str, str]:
    """The signals asked for; by default pdq and md5 of a photo, vpdq and md5 of a video."""
    if wanted is None:
        wanted = VIDEO_TYPES if hashes.media_type == "video" else PHOTO_TYPES
    signals = hashes.signals()
    return {name: signals[name] for name in wanted if name in signals}


def signal_name(name: str) -> str:
    """HMA's name for the MD5 of a file is ``video_md5``."""
    return "md5" if name == "video_md5" else name


async def hash_url(
    url: str, service: Service, key: ApiKey, *, types: str | None, content_type: str | None
) -> dict[str, str]:
    """Fetch (on the event loop, under the fetch deadline) and hash (in a worker thread)."""
    wanted = signal_types(types, content_type)
    hashes, _data = await media_from_url(url, service, key)
    return chosen_signals(hashes, wanted)


async def media_from_url(url: str, service: Service, key: ApiKey) -> tuple[MediaHashes, bytes]:
    """The media at ``url`` and its hashes."""
    data = await fetch_media(url, service, key)
    return await run_in_threadpool(hash_media_bytes, data, service), data


async def hash_form(request: Request, service: Service, *, types: str | None) -> dict[str, str]:
    wanted = signal_types(types, None)
    hashes, _data = await media_from_form(request, service, keep=False)
    return chosen_signals(hashes, wanted)


async def media_from_form(
    request: Request, service: Service, *, keep: bool
) -> tuple[MediaHashes, bytes | None]:
    """The uploaded form field's hashes, and (``keep``) its bytes, for the action rules."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InputError(
            "missing multipart/form-data file upload",
            hint="post the media as a multipart form field named 'photo'",
        )
    async with request.form(max_files=2, max_fields=10) as form:
        upload = upload_from_form(form)
        # Hashed while the form (and its spooled file) is open: a video is read from there.
        hashes = await run_in_threadpool(hash_upload, upload, service)
        data = None
        if keep:  # the size was checked by hash_upload (api_max_upload_bytes)
            upload.file.seek(0)
            data = await run_in_threadpool(upload.file.read)
    return hashes, data
