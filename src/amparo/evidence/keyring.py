"""The evidence keyring file: where it is, read once and again only when it changed (another
process rotated it), created only while no evidence needs an existing one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from amparo.evidence import crypto
from amparo.files import private_dir

log = logging.getLogger("amparo.evidence")


class KeyringFile:
    """One keyring file, cached by its (mtime, size, inode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._ring: crypto.Keyring | None = None
        self._sig: tuple[int, int, int] | None = None

    def get(self, *, create: bool, in_use: Callable[[], bool]) -> crypto.Keyring:
        """The keyring, re-read when the file changed. With ``create``, a missing keyring is
        created, but only while ``in_use()`` says no evidence exists: a keyring that went
        missing must be restored, not silently replaced."""
        path = self.path
        with self._lock:
            try:
                st = path.stat()
            except FileNotFoundError:
                if not create or in_use():
                    return crypto.Keyring.load(path)  # raises the "restore it" error
                self._ring = _create(path)
                st = path.stat()
            sig = (st.st_mtime_ns, st.st_size, st.st_ino)
            if self._ring is None or sig != self._sig:
                if st.st_mode & 0o077:
                    log.warning(
                        "the evidence keyring %s is readable by other users; chmod 600 it", path
                    )
                self._ring = crypto.Keyring.load(path)
                self._sig = sig
            return self._ring


def _create(path: Path) -> crypto.Keyring:
    private_dir(path.parent)
    try:
        ring = crypto.Keyring.create(path)
    except FileExistsError:
        return crypto.Keyring.load(path)
    log.warning(
        "created a new evidence keyring at %s. Back it up now and keep it off the data disk "
        "(set evidence_kek_file): without it no evidence can be read, and anyone holding "
        "it and the evidence blobs can read them.",
        path,
    )
    return ring
