"""``amparo hash``: print the signals of files as JSON lines."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from amparo.cli import context
from amparo.cli.context import EXIT_ERROR, EXIT_OK, emit_json, handle_errors, settings_from
from amparo.errors import AmparoError

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
    # Hashing does no linear algebra, and OpenBLAS starts a thread per core when numpy is
    # imported: ~60 ms of CPU on every call of `find | xargs amparo hash` (issue #18), more
    # on a machine with many cores. So numpy is imported here, after saying one is enough.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from amparo.hashing import hash_file

    settings = settings_from(ctx)
    status = EXIT_OK
    for path in paths:
        try:
            if path.is_dir():
                raise IsADirectoryError(21, "is a directory (use `amparo scan` for folders)")
            result = hash_file(path, settings, dihedral=dihedral)
        except (OSError, AmparoError) as exc:
            message = exc.message if isinstance(exc, AmparoError) else (exc.strerror or str(exc))
            context.err_console.print(f"error: {path}: {message}", markup=False)
            emit_json({"path": str(path), "error": message})
            status = EXIT_ERROR
            continue
        emit_json({"path": str(path), **result.to_json(vpdq_text=vpdq_text)})
    raise typer.Exit(status)
