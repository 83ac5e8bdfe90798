"""The canonical signed form of federation feed pages and opinions, and the installation's
feed signing key (Ed25519).

A publisher signs every page it serves and a subscriber signs every opinion it sends back;
each side pins the other's public key (given out of band: ``amparo feeds key``). What is
signed is the *canonical* JSON of the object (keys sorted, no spaces, UTF-8), so both sides
compute the same bytes from the parsed object whatever the transport did to whitespace.

Pure: no storage (the import-linter contract ``no-storage-below`` holds this module to it).
The key file is :class:`amparo.keyfile.Ed25519KeyFile`, as for the audit signing key; a
separate key, so a partner never learns the audit key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from amparo.config import Settings
from amparo.errors import FeedVerificationError, InputError
from amparo.keyfile import Ed25519KeyFile
from amparo.keyfile import public_key_pem as public_key_pem

KEY_ID_CHARS = 16
"""Hex characters of a key id (64 bits of the public key's SHA-256): a short, printable
name for a key, never a substitute for checking the signature."""


def canonical(obj: Any) -> bytes:
    """JSON with keys sorted, compact separators, UTF-8 (not ASCII-escaped): the bytes a
    feed page or an opinion signature covers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(key: Ed25519PublicKey) -> str:
    """A short name for a public key: the first 16 hex characters of the SHA-256 of its raw
    32 bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:KEY_ID_CHARS]


def load_public_key(pem: str | bytes, *, what: str = "the public key") -> Ed25519PublicKey:
    """An Ed25519 public key from PEM text; :class:`InputError` naming ``what`` otherwise."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"{what} is not a PEM public key: {exc}",
            hint="use the output of `amparo feeds key` on the other installation",
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(
            f"{what} is not an Ed25519 key",
            hint="use the output of `amparo feeds key` on the other installation",
        )
    return key


def feed_key_path(settings: Settings) -> Path:
    """Where the feed signing key lives: ``feed_signing_key_file``, else
    ``<home>/keys/feed-signing.key``."""
    if settings.feed_signing_key_file:
        return Path(settings.feed_signing_key_file).expanduser()
    return settings.home / "keys" / "feed-signing.key"


def sign(key: Ed25519PrivateKey, obj: Any) -> str:
    """Base64 of the Ed25519 signature over ``canonical(obj)``."""
    return base64.b64encode(key.sign(canonical(obj))).decode()


def verify(key: Ed25519PublicKey, obj: Any, signature: object, *, what: str = "the page") -> None:
    """Check ``signature`` (base64) over ``canonical(obj)`` with ``key``; raise
    :class:`FeedVerificationError` when it does not hold (another key, an altered byte)."""
    hint = (
        "the object was altered in transit or signed by another key than the one pinned; "
        "nothing of it was applied"
    )
    if not isinstance(signature, str):
        raise FeedVerificationError(f"{what} carries no signature", hint=hint)
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise FeedVerificationError(f"{what}'s signature is not base64", hint=hint) from None
    try:
        key.verify(raw, canonical(obj))
    except InvalidSignature:
        raise FeedVerificationError(
            f"{what}'s signature does not verify with the pinned key {key_id(key)}", hint=hint
        ) from None


class FeedSigner(Ed25519KeyFile):
    """This installation's feed signing key, loaded from (or created at, 0600) ``path``."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        super().__init__(
            path, create=create, what="feed signing key", setting="feed_signing_key_file"
        )

    @classmethod
    def of(cls, settings: Settings) -> FeedSigner:
        return cls(feed_key_path(settings))

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def public_pem(self) -> str:
        return public_key_pem(self.public_key)

    def sign(self, obj: Any) -> str:
        return sign(self.private_key, obj)


def organisation_id(settings: Settings, signer: FeedSigner | None = None) -> str:
    """This installation's organisation id as provenance names it: ``organisation_id`` when
    set, else ``amparo-`` and the first 8 characters of the feed signing key's id (stable for
    as long as the key is)."""
    if settings.organisation_id:
        return settings.organisation_id
    signer = signer or FeedSigner.of(settings)
    return f"amparo-{signer.key_id[:8]}"
