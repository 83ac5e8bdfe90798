"""The Ed25519 key that signs the audit chain's checkpoints, and its public half.

An attacker who rewrites the database can recompute every hash of the chain, but not a
signature: checkpoints signed with this key are what pins the chain (see
:mod:`amparo.store.audit.chain`). The public key is given to auditors out of band.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from amparo.errors import InputError
from amparo.keyfile import Ed25519KeyFile, public_key_pem

__all__ = ["AuditSigner", "key_id", "load_public_key", "public_key_pem"]


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


class AuditSigner(Ed25519KeyFile):
    """The Ed25519 key that signs checkpoints, loaded from (or created at) ``path``."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        super().__init__(
            path, create=create, what="audit signing key", setting="audit_signing_key_file"
        )

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private_key.sign(message)).decode()
