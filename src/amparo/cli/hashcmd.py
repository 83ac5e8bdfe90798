"""``amparo hash``: print the signals of files as JSON lines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from amparo.cli.context import (
    EXIT_ERROR,
    EXIT_OK,
    emit_json,
    err_console,
    handle_errors,
    settings_from,
)
from amparo.config import Settings
from amparo.errors import AmparoError
from amparo.hashing import MediaHashes, hash_media, hash_video_media, video_limits
from amparo.media.sniff import HEAD_BYTES, sniff

HELP = """Hash files: one JSON line each with path, pdq, pdq_quality, md5, sha1, sha256.

Videos get vpdq (the compact one-line vPDQ, `vpdq1:...`) and video (duration, frames hashed,
width, height) instead of pdq; --vpdq-text adds the reference text form as vpdq_text.

Nothing is stored. Example: amparo hash photo.jpg other.png clip.mp4
"""


@handle_errors
def hash_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files to hash.", show_default=False)],
    dihedral: Annotated[
        bool, typer.Option("--dihedral", help="Also print the 7 rotated/flipped PDQ hashes.")
    ] = False,
    vpdq_text: Annotated[
        bool,
        typer.Option(
            "--vpdq-text",
            help="For videos, also print the vPDQ in the reference text form "
            "(frame_number,quality,pdq_hex,timestamp lines) as vpdq_text.",
        ),
    ] = False,
) -> None:
    settings = settings_from(ctx)
    status = EXIT_OK
    for path in paths:
        try:
            if path.is_dir():
                raise IsADirectoryError(21, "is a directory (use `amparo scan` for folders)")
            result = _hash_path(path, settings, dihedral=dihedral)
        except (OSError, AmparoError) as exc:
            message = exc.message if isinstance(exc, AmparoError) else (exc.strerror or str(exc))
            err_console.print(f"error: {path}: {message}", markup=False)
            emit_json({"path": str(path), "error": message})
            status = EXIT_ERROR
            continue
        emit_json({"path": str(path), **result.to_json(vpdq_text=vpdq_text)})
    raise typer.Exit(status)


def _hash_path(path: Path, settings: Settings, *, dihedral: bool) -> MediaHashes:
    size = path.stat().st_size
    with path.open("rb") as fh:
        kind = sniff(fh.read(HEAD_BYTES))
    if kind == "video":
        # Streamed from disk by the decoder: never read whole into memory.
        if size > settings.video_max_file_bytes:
            raise AmparoError(f"{size:,} bytes is over video_max_file_bytes")
        return hash_video_media(
            path, sample_fps=settings.video_sample_fps, limits=video_limits(settings)
        )
    if size > settings.max_file_bytes:
        raise AmparoError(f"{size:,} bytes is over max_file_bytes")
    return hash_media(path.read_bytes(), max_pixels=settings.max_image_pixels, dihedral=dihedral)
