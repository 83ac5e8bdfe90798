"""The Ed25519 key that signs the audit chain's checkpoints, and its public half.

An attacker who rewrites the database can recompute every hash of the chain, but not a
signature: checkpoints signed with this key are what pins the chain (see
:mod:`amparo.store.audit.chain`). The public key is given to auditors out of band.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from amparo.errors import ConfigError, InputError
from amparo.files import private_dir


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the raw 32-byte public key: a short name for the key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise InputError(
            f"not a PEM public key: {exc}", hint="use the output of `amparo audit public-key`"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError("the public key is not an Ed25519 key")
    return key


class AuditSigner:
    """The Ed25519 key that signs checkpoints, loaded from (or created at) ``path``."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self._create = create
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

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private_key.sign(message)).decode()

    def _load(self) -> Ed25519PrivateKey:
        if not self.path.exists():
            if not self._create:
                raise ConfigError(
                    f"audit signing key {self.path} does not exist",
                    hint="check audit_signing_key_file, or unset it to use <home>/keys",
                )
            return self._generate()
        try:
            key = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot read the audit signing key {self.path}: {exc}",
                hint="it must be an unencrypted Ed25519 private key in PEM (PKCS#8)",
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"the audit signing key {self.path} is not an Ed25519 key")
        return key

    def _generate(self) -> Ed25519PrivateKey:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        private_dir(self.path.parent)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        try:
            # link, not rename: of two processes creating the key at once, one key wins.
            os.link(tmp, self.path)
        except FileExistsError:
            tmp.unlink()
            return self._load()
        tmp.unlink()
        return key
