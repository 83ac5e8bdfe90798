"""Private files: everything Amparo writes holds hash lists, secrets or evidence.

Directories Amparo creates are 0700 and files 0600, whatever the process umask (a umask can
only narrow a mode, and a stray 0o277 umask would leave a file its owner cannot write, so the
mode is set explicitly after creation). An existing home that other users can enter is
tightened to 0700 with a warning when an installation opens it (the files inside are then out
of their reach whatever their own modes), and so is an existing SQLite database file.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

log = logging.getLogger("amparo.files")


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents as 0700 directories (existing ones are left
    as they are: a parent such as /srv is not ours to change). Returns ``path``."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # another process made it: its mode is its creator's business
        os.chmod(d, PRIVATE_DIR)
    return path


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """``os.open`` a file, creating it 0600 (umask-independent); returns the descriptor."""
    fd = os.open(path, flags | os.O_CREAT, PRIVATE_FILE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def tighten(path: Path, mode: int, what: str) -> None:
    """Restrict an existing ``path`` that group or others may use to ``mode``, with a warning."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & 0o077:
        try:
            os.chmod(path, mode)
        except PermissionError:
            log.warning(
                "%s %s is open to other users (%o) and cannot be tightened: chmod %o it",
                what,
                path,
                current,
                mode,
            )
            return
        log.warning(
            "%s %s was open to other users (%o); tightened it to %o", what, path, current, mode
        )


def private_home(home: Path) -> Path:
    """Create the data directory 0700, or tighten an existing one that others may enter."""
    if home.exists():
        tighten(home, PRIVATE_DIR, "the data directory")
    else:
        private_dir(home)
    return home


def private_sqlite_file(path: Path) -> None:
    """Create an SQLite database file 0600 before SQLite does (SQLite gives its -wal and -shm
    files the database file's mode), or tighten an existing one and its -wal/-shm."""
    private_dir(path.parent)
    if path.exists():
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            tighten(p, PRIVATE_FILE, "the database file")
        return
    os.close(open_private(path, os.O_RDWR | os.O_CREAT))


def fsync_dir(directory: Path) -> None:
    """Make a rename (or a new file) inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
