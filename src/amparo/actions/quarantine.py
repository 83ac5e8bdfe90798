"""Moving a matched scan file into the quarantine folder (``quarantine`` in ``move`` mode).

Moving changes the scanned file system, so it happens only when an operator set
``quarantine_dir``; the file lands under that folder and nowhere else, named by its SHA-256,
after its bytes are checked to be the ones that matched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from amparo.errors import ConfigError, ConflictError, InputError
from amparo.signals.digests import digest_source


def quarantine_target(quarantine_dir: Path, sha256: str, file_name: str) -> Path:
    """``<quarantine_dir>/<sha256[:2]>/<sha256>-<file name>``, checked to stay inside."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in file_name)[:100] or "file"
    root = quarantine_dir.resolve()
    target = (root / sha256[:2] / f"{sha256}-{safe}").resolve()
    if root not in target.parents:
        raise InputError(f"refusing to move outside the quarantine folder: {target}")
    return target


def move_to_quarantine(path: Path, *, sha256: str, quarantine_dir: str) -> Path:
    """Move ``path`` (whose content must still have ``sha256``) into ``quarantine_dir``;
    returns where it went. Refuses when no quarantine folder is configured."""
    if not quarantine_dir:
        raise ConfigError(
            "quarantine in move mode needs a quarantine folder",
            hint="set quarantine_dir (AMPARO_QUARANTINE_DIR), or use mode copy",
        )
    root = Path(quarantine_dir).expanduser()
    source = path.resolve()
    if not source.is_file():
        raise InputError(f"{path} is not a file on disk (archive members cannot be moved)")
    if root.resolve() in source.parents:
        raise InputError(f"{path} is already in the quarantine folder")
    if digest_source(source).sha256 != sha256:
        raise ConflictError(f"{path} changed since it was scanned; not moved", hint="scan it again")
    target = quarantine_target(root, sha256, source.name)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if target.exists():
        # The same content is already quarantined: the copy here goes away.
        source.unlink()
        return target
    # os.replace is atomic on one file system; shutil.move copies then deletes across them.
    try:
        os.replace(source, target)
    except OSError:
        shutil.move(str(source), str(target))
    return target
