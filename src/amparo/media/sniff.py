"""Recognise media types by their magic bytes, never by file name.

Vocabulary (see docs/architecture.md's glossary): a *media type* is what :func:`sniff`
answers (``jpeg``, ``png``, ..., ``video``, ``zip``); its *media kind* is ``photo`` or
``video`` (:func:`media_kind`; the HMA API calls it ``content_type``); its *MIME type*
(``mime``) is ``MIME_TYPES[media_type]``, what HTTP calls Content-Type.
"""

from __future__ import annotations

IMAGE_TYPES = ("jpeg", "png", "gif", "webp", "bmp", "tiff")
ARCHIVE_TYPES = ("zip", "tar", "gzip", "bzip2", "xz")
HEAD_BYTES = 512
MEDIA_KINDS = ("photo", "video")
MIME_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "zip": "application/zip",
    "tar": "application/x-tar",
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
}


def media_kind(media_type: str | None) -> str | None:
    """The media kind, ``photo`` or ``video``, of a media type (:func:`sniff`'s answer), or
    None for a type that is not media Amparo matches (an archive, an unknown file). The one
    place that decides it: for raw bytes, ``media_kind(sniff(data[:HEAD_BYTES]))``."""
    if media_type == "video":
        return "video"
    return "photo" if media_type in IMAGE_TYPES else None


def sniff(head: bytes) -> str | None:
    """Return the media type of content starting with ``head`` (>= 512 bytes if available).

    One of ``IMAGE_TYPES``, ``ARCHIVE_TYPES``, ``"video"`` or None when unknown.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM" and len(head) >= 26:
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if _is_video(head):
        return "video"
    return None


def _is_video(head: bytes) -> bool:
    if head[4:8] == b"ftyp":  # MP4, MOV, 3GP
        return True
    if head[:4] == b"\x1a\x45\xdf\xa3":  # Matroska / WebM
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    if head[:1] == b"\x47" and len(head) > 188 and head[188:189] == b"\x47":  # MPEG-TS
        return True
    return head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")  # MPEG-PS
