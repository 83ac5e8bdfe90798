"""An Ed25519 private key kept in a file: PEM (PKCS#8, unencrypted), mode 0600 in a private
directory, created on first use. Of two processes creating it at once, one key wins (the
file is linked into place, never renamed over another).

Amparo keeps two such keys for different readers: the audit signing key (checkpoints of the
audit chain, for auditors) and the feed signing key (federation pages and opinions, for
partners). They are never the same key, so a partner never learns the audit key.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from amparo.errors import ConfigError
from amparo.files import private_dir


def public_key_pem(key: Ed25519PublicKey) -> str:
    """The public key as PEM (SubjectPublicKeyInfo): what is given out to be pinned."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


class Ed25519KeyFile:
    """The key at ``path``, loaded once (thread-safe). ``what`` names it in errors and
    ``setting`` is the setting that moves it."""

    def __init__(self, path: Path, *, create: bool = True, what: str, setting: str) -> None:
        self.path = path
        self._create = create
        self._what = what
        self._setting = setting
        self._key: Ed25519PrivateKey | None = None
        self._lock = threading.Lock()

    @property
    def private_key(self) -> Ed25519PrivateKey:
        with self._lock:
            if self._key is None:
                self._key = self._load()
            return self._key

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def _load(self) -> Ed25519PrivateKey:
        if not self.path.exists():
            if not self._create:
                raise ConfigError(
                    f"{self._what} {self.path} does not exist",
                    hint=f"check {self._setting}, or unset it to use <home>/keys",
                )
            return self._generate()
        try:
            key = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot read the {self._what} {self.path}: {exc}",
                hint="it must be an unencrypted Ed25519 private key in PEM (PKCS#8)",
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"the {self._what} {self.path} is not an Ed25519 key")
        return key

    def _generate(self) -> Ed25519PrivateKey:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        private_dir(self.path.parent)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            # link, not rename: of two processes creating the key at once, one key wins.
            os.link(tmp, self.path)
        except FileExistsError:
            tmp.unlink()
            return self._load()
        tmp.unlink()
        return key
