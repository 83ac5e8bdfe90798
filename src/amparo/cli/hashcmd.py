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
from amparo.errors import AmparoError
from amparo.hashing import hash_media

HELP = """Hash files: one JSON line each with path, pdq, pdq_quality, md5, sha1, sha256.

Nothing is stored. Example: amparo hash photo.jpg other.png
"""


@handle_errors
def hash_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files to hash.", show_default=False)],
    dihedral: Annotated[
        bool, typer.Option("--dihedral", help="Also print the 7 rotated/flipped PDQ hashes.")
    ] = False,
) -> None:
    settings = settings_from(ctx)
    status = EXIT_OK
    for path in paths:
        try:
            if path.is_dir():
                raise IsADirectoryError(21, "is a directory (use `amparo scan` for folders)")
            size = path.stat().st_size
            if size > settings.max_file_bytes:
                raise AmparoError(f"{size:,} bytes is over max_file_bytes")
            result = hash_media(
                path.read_bytes(), max_pixels=settings.max_image_pixels, dihedral=dihedral
            )
        except (OSError, AmparoError) as exc:
            message = exc.message if isinstance(exc, AmparoError) else (exc.strerror or str(exc))
            err_console.print(f"error: {path}: {message}", markup=False)
            emit_json({"path": str(path), "error": message})
            status = EXIT_ERROR
            continue
        emit_json({"path": str(path), **result.to_json()})
    raise typer.Exit(status)
