"""Media arriving over HTTP (an upload or a url=), hashed with bad input refused clearly.

Uploads arrive spooled to a temporary file (Starlette keeps the first MiB in memory, the rest
on disk). Videos are hashed from that file by the decoder, never read whole into memory;
images, which must be decoded whole anyway, are read into bytes.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from fastapi import UploadFile
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload

from amparo.api.service import Service
from amparo.errors import InputError, MediaTooLargeError, UnsupportedMediaError
from amparo.hashing import MediaHashes, hash_video_media, video_limits
from amparo.keys import ApiKey
from amparo.media.decode import decode_image
from amparo.media.sniff import HEAD_BYTES, IMAGE_TYPES, media_kind, sniff

# Field names an upload may come in: HMA names the field after the content type.
UPLOAD_FIELDS = ("file", "photo", "media", "image", "video")


def read_upload(upload: StarletteUpload | UploadFile, service: Service) -> bytes:
    limit = service.settings.api_max_upload_bytes
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise MediaTooLargeError(
            f"the upload is over the {limit:,}-byte limit",
            hint="raise api_max_upload_bytes if such media is expected",
        )
    if not data:
        raise InputError("the upload is empty")
    return data


def hash_upload(
    upload: StarletteUpload | UploadFile, service: Service, *, dihedral: bool = False
) -> MediaHashes:
    """Hash an upload: a video straight from its spooled file, anything else as bytes."""
    limit = service.settings.api_max_upload_bytes
    fh = upload.file
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(0)
    if size > limit:
        raise MediaTooLargeError(
            f"the upload is over the {limit:,}-byte limit",
            hint="raise api_max_upload_bytes if such media is expected",
        )
    if not size:
        raise InputError("the upload is empty")
    media_type = sniff(fh.read(HEAD_BYTES))
    fh.seek(0)
    if media_type == "video":
        return hash_video_upload(fh, service)
    return hash_media_bytes(read_upload(upload, service), service, dihedral=dihedral)


def hash_video_upload(fh: BinaryIO, service: Service) -> MediaHashes:
    """vPDQ (at ``video_sample_fps``) and digests of a video in a seekable binary file."""
    settings = service.settings
    return hash_video_media(fh, sample_fps=settings.video_sample_fps, limits=video_limits(settings))


def upload_from_form(form: FormData) -> StarletteUpload:
    """The one uploaded file of an HMA-style form (field ``photo``, ``video`` or ``file``)."""
    files = [(k, v) for k, v in form.multi_items() if isinstance(v, StarletteUpload)]
    if not files:
        raise InputError(
            "missing multipart/form-data file upload",
            hint="send the media as a form field named 'photo' (or 'file')",
        )
    if len(files) > 1:
        raise InputError("only one file is allowed per request")
    name, upload = files[0]
    if name not in UPLOAD_FIELDS:
        raise InputError(
            f"no such content_type: {name!r}", hint="name the form field 'photo' or 'file'"
        )
    return upload


async def fetch_media(url: str, service: Service, key: ApiKey) -> bytes:
    """The media at ``url``, fetched on the event loop (no worker thread is held while a slow
    server answers) within ``fetch_timeout_seconds`` in total, and at most
    ``fetch_max_concurrent_per_key`` at once per key (429 beyond)."""
    with service.fetch_slots.hold(str(key.id)):
        return (await service.fetcher.fetch_async(url)).content


def hashable_media_type(data: bytes) -> str:
    """The media type of media Amparo hashes (an image type or "video"); refuse the rest."""
    media_type = sniff(data[:HEAD_BYTES])
    if media_type is None or media_kind(media_type) is None:
        raise UnsupportedMediaError(
            "the content is not an image or video Amparo can hash"
            + (f" (it looks like {media_type})" if media_type else ""),
            hint="send JPEG, PNG, GIF, WebP, BMP or TIFF images, or video",
        )
    return media_type


def hash_media_bytes(data: bytes, service: Service, *, dihedral: bool = False) -> MediaHashes:
    """Hash media; refuse what is not media Amparo knows, or an image that will not decode.

    A video gets vPDQ sampled at ``video_sample_fps``; one that will not decode keeps its
    digests (still matched) and says why in ``error``.
    """
    media_type = hashable_media_type(data)
    hashes = service.amparo.checks.hash_bytes(data, dihedral=dihedral)
    if media_type in IMAGE_TYPES and hashes.pdq is None:
        # Decode again to raise the precise error (corrupt, bomb, ...): rare, so cheap enough.
        decode_image(
            data,
            max_pixels=service.settings.max_image_pixels,
            mode="L",
            max_memory=service.settings.max_decode_memory,
        )
        raise InputError(hashes.error or "the image cannot be decoded")
    return hashes
