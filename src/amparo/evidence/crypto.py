"""Envelope encryption of evidence: the keyring of key-encryption keys and the blob format.

Every item gets its own random 256-bit data key. The content is encrypted with that key in
AES-256-GCM chunks (the STREAM construction); the data key is itself encrypted ("wrapped") with
a key-encryption key (KEK) from the keyring and stored, wrapped, in the database. Rotating the
KEK re-wraps 60-byte data keys and never touches the content.

Blob format, version 1 (all integers big-endian)::

    header (37 bytes)
      magic        8   b"AMPAROEV"
      version      2   1
      chunk_size   4   plaintext bytes per chunk (the last chunk may be shorter)
      nonce_prefix 7   random
      item_uuid   16   the item this blob belongs to
    chunks, each: AES-256-GCM(ciphertext || 16-byte tag)
      nonce = nonce_prefix || chunk index (4 bytes) || final flag (1 byte: 1 on the last chunk)
      associated data = header || SHA-256 of the whole plaintext (32 bytes)

The final flag in the nonce makes truncation at a chunk boundary and appended data fail
authentication; the chunk index makes reordering fail; the header and the content's SHA-256
in the associated data bind the blob to its item, so blobs cannot be swapped between items.
Empty content is one empty final chunk.

Wrapped data key: ``nonce (12) || AES-256-GCM(data key) || tag (16)`` under the KEK, with
associated data ``b"amparo-evidence-dek/1|" + kek id + b"|" + item uuid``.

Sealed secrets (webhook signing secrets, which must be recoverable to sign): the text
``enc1:<kek id>:<base64 of nonce (12) || AES-256-GCM(secret) || tag (16)>`` with associated
data ``b"amparo-secret/1|" + kek id + b"|" + context`` (e.g. ``webhook:<name>``).

Keyring file (JSON, mode 0600)::

    {"format": "amparo-evidence-keyring", "version": 1, "current": "<id>",
     "keys": [{"id": "<id>", "key": "<base64 of 32 bytes>", "created_at": "<ISO 8601>"}]}

The ``current`` key wraps new items; the others still unwrap the items wrapped by them.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import struct
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amparo.clock import utc_now
from amparo.errors import ConfigError, EvidenceIntegrityError, MediaTooLargeError
from amparo.files import fsync_dir, private_dir

MAGIC = b"AMPAROEV"
FORMAT_VERSION = 1
CHUNK_SIZE = 1024 * 1024
TAG_BYTES = 16
NONCE_PREFIX_BYTES = 7
_HEADER = struct.Struct(">8sHI7s16s")
HEADER_BYTES = _HEADER.size
KEY_BYTES = 32
KEYRING_FORMAT = "amparo-evidence-keyring"
_WRAP_AD = b"amparo-evidence-dek/1|"


def new_data_key() -> bytes:
    """A fresh random 256-bit data key (one per item)."""
    return AESGCM.generate_key(bit_length=256)


# -- the keyring --------------------------------------------------------------------------


@dataclass(frozen=True)
class Kek:
    """One key-encryption key."""

    id: str
    key: bytes
    created_at: datetime


def _malformed(path: Path, problem: str) -> ConfigError:
    return ConfigError(
        f"evidence keyring {path} is malformed: {problem}",
        hint="restore it from your key backup (see docs/evidence.md)",
    )


class Keyring:
    """Key-encryption keys by id; ``current`` wraps new data keys.

    Load with :meth:`load`, create with :meth:`create`. Changes (:meth:`add`, :meth:`retire`)
    are written back atomically with mode 0600.
    """

    def __init__(self, path: Path, keys: dict[str, Kek], current: str) -> None:
        self.path = path
        self.keys = keys
        self.current = current

    @classmethod
    def create(cls, path: Path) -> Keyring:
        """A new keyring with one fresh key, written to ``path`` (which must not exist)."""
        kek = _new_kek()
        ring = cls(path, {kek.id: kek}, kek.id)
        private_dir(path.parent)
        ring.save(exclusive=True)
        return ring

    @classmethod
    def load(cls, path: Path) -> Keyring:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"evidence keyring {path} does not exist",
                hint="restore it from your key backup, or point evidence_kek_file at it; "
                "without it no preserved evidence can be read",
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read evidence keyring {path}: {exc}") from None
        try:
            if raw.get("format") != KEYRING_FORMAT or raw.get("version") != 1:
                raise _malformed(path, "not an Amparo evidence keyring (format/version)")
            keys: dict[str, Kek] = {}
            for entry in raw["keys"]:
                key = base64.b64decode(entry["key"], validate=True)
                if len(key) != KEY_BYTES:
                    raise _malformed(path, f"key {entry['id']!r} is not 32 bytes")
                keys[str(entry["id"])] = Kek(
                    str(entry["id"]), key, datetime.fromisoformat(entry["created_at"])
                )
            current = str(raw["current"])
            if current not in keys:
                raise _malformed(path, f"current key {current!r} is not in the keyring")
        # What a JSON document of the wrong shape raises: lookups, base64 and dates.
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _malformed(path, str(exc)) from None
        return cls(path, keys, current)

    def save(self, *, exclusive: bool = False) -> None:
        """Write the keyring: temp file (0600) in the same directory, fsync, rename."""
        body = {
            "format": KEYRING_FORMAT,
            "version": 1,
            "current": self.current,
            "keys": [
                {
                    "id": k.id,
                    "key": base64.b64encode(k.key).decode(),
                    "created_at": k.created_at.isoformat(),
                }
                for k in self.keys.values()
            ],
        }
        data = (json.dumps(body, indent=2) + "\n").encode()
        fd, tmp = tempfile.mkstemp(prefix=".keyring-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if exclusive:
                # Never overwrite a keyring another process created meanwhile.
                os.link(tmp, self.path)
                os.unlink(tmp)
            else:
                os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(self.path.parent)

    def add(self) -> Kek:
        """Add a fresh key, make it current and save."""
        kek = _new_kek()
        self.keys[kek.id] = kek
        self.current = kek.id
        self.save()
        return kek

    def retire(self, ids: Iterable[str]) -> None:
        """Remove keys (never the current one) and save."""
        for kid in ids:
            if kid == self.current:
                raise ConfigError(f"cannot retire the current key {kid!r}")
            self.keys.pop(kid, None)
        self.save()

    def wrap(self, data_key: bytes, item_uuid: str) -> tuple[str, bytes]:
        """Wrap a data key with the current KEK; returns ``(kek id, wrapped key)``."""
        kek = self.keys[self.current]
        nonce = secrets.token_bytes(12)
        wrapped = AESGCM(kek.key).encrypt(nonce, data_key, _wrap_ad(kek.id, item_uuid))
        return kek.id, nonce + wrapped

    def unwrap(self, kek_id: str, wrapped: bytes, item_uuid: str, *, item: int) -> bytes:
        kek = self.keys.get(kek_id)
        if kek is None:
            raise ConfigError(
                f"evidence item {item} is wrapped by key {kek_id!r}, which is not in the "
                f"keyring {self.path}",
                hint="restore the keyring that holds it from your key backup",
            )
        try:
            return AESGCM(kek.key).decrypt(wrapped[:12], wrapped[12:], _wrap_ad(kek_id, item_uuid))
        except InvalidTag:
            raise EvidenceIntegrityError(
                f"evidence item {item}: its data key does not unwrap with key {kek_id!r}",
                hint="the database row or the keyring was altered; restore them from backup",
            ) from None

    def seal(self, secret: str, context: str) -> str:
        """Encrypt a short secret (a webhook signing secret) with the current KEK:
        ``enc1:<kek id>:<base64 of nonce || ciphertext || tag>``, bound to ``context``."""
        kek = self.keys[self.current]
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(kek.key).encrypt(nonce, secret.encode(), _seal_ad(kek.id, context))
        return f"{SEALED_PREFIX}{kek.id}:{base64.b64encode(nonce + sealed).decode()}"

    def unseal(self, value: str, context: str) -> str:
        """The secret :meth:`seal` encrypted (any key of the ring that is still in it)."""
        kek_id = sealed_kek(value)
        kek = self.keys.get(kek_id or "")
        if kek_id is None or kek is None:
            raise ConfigError(
                f"the secret of {context} is encrypted with key {kek_id!r}, which is not in "
                f"the keyring {self.path}",
                hint="restore the keyring that holds it from your key backup",
            )
        try:
            raw = base64.b64decode(value.split(":", 2)[2], validate=True)
            return AESGCM(kek.key).decrypt(raw[:12], raw[12:], _seal_ad(kek_id, context)).decode()
        except (InvalidTag, ValueError):
            raise EvidenceIntegrityError(
                f"the secret of {context} does not decrypt with key {kek_id!r}",
                hint="the database row or the keyring was altered; restore them from backup",
            ) from None


SEALED_PREFIX = "enc1:"
_SEAL_AD = b"amparo-secret/1|"


def sealed_kek(value: str) -> str | None:
    """The KEK id a :meth:`Keyring.seal` value was sealed with; None for a plain value."""
    if not value.startswith(SEALED_PREFIX) or value.count(":") < 2:
        return None
    return value.split(":", 2)[1]


def _seal_ad(kek_id: str, context: str) -> bytes:
    return _SEAL_AD + kek_id.encode() + b"|" + context.encode()


def _new_kek() -> Kek:
    now = utc_now()
    kid = f"k{now:%Y%m%d}-{secrets.token_hex(4)}"
    return Kek(kid, AESGCM.generate_key(bit_length=256), now)


def _wrap_ad(kek_id: str, item_uuid: str) -> bytes:
    return _WRAP_AD + kek_id.encode() + b"|" + item_uuid.encode()


# -- the blob format ----------------------------------------------------------------------


def _nonce(prefix: bytes, index: int, final: bool) -> bytes:
    if index >= 2**32:
        raise MediaTooLargeError(
            "content too large for one evidence item (4 PiB at 1 MiB chunks)",
            hint="max_file_bytes keeps media far below this",
        )
    return prefix + struct.pack(">IB", index, 1 if final else 0)


def encrypt_chunks(
    data_key: bytes,
    item_uuid: str,
    sha256: bytes,
    plaintext: Iterable[bytes],
    *,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[bytes]:
    """Yield the blob: the header, then one encrypted chunk per ``chunk_size`` of plaintext.

    ``plaintext`` may come in pieces of any size; ``sha256`` is the digest of all of it
    (bound into every chunk, so it must be known up front).
    """
    header = _HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        chunk_size,
        secrets.token_bytes(NONCE_PREFIX_BYTES),
        bytes.fromhex(item_uuid),
    )
    prefix = header[14:21]
    ad = header + sha256
    aes = AESGCM(data_key)
    yield header
    index = 0
    pending: bytes | None = None
    for chunk in _rechunk(plaintext, chunk_size):
        if pending is not None:
            yield aes.encrypt(_nonce(prefix, index, False), pending, ad)
            index += 1
        pending = chunk
    yield aes.encrypt(_nonce(prefix, index, True), pending or b"", ad)


def _rechunk(pieces: Iterable[bytes], size: int) -> Iterator[bytes]:
    buf = bytearray()
    for piece in pieces:
        buf += piece
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def decrypt_stream(
    data_key: bytes, item_uuid: str, sha256: bytes, blob: BinaryIO, *, item: int
) -> Iterator[bytes]:
    """Yield the plaintext of ``blob`` chunk by chunk; every chunk is authenticated before it
    is yielded. Raises :class:`EvidenceIntegrityError` for any tampering, truncation or a
    blob that belongs to another item. The caller still compares the SHA-256 of the whole."""

    def bad(what: str) -> EvidenceIntegrityError:
        return EvidenceIntegrityError(
            f"evidence item {item} failed its integrity check: {what}",
            hint="the stored blob was altered or damaged; restore it from backup "
            "(amparo evidence verify lists every damaged item)",
        )

    header = _read_exact(blob, HEADER_BYTES)
    if len(header) != HEADER_BYTES:
        raise bad("the blob is shorter than its header")
    magic, version, chunk_size, prefix, uuid_bytes = _HEADER.unpack(header)
    if magic != MAGIC:
        raise bad("not an Amparo evidence blob")
    if version != FORMAT_VERSION:
        raise bad(f"unknown blob format version {version}")
    if uuid_bytes.hex() != item_uuid:
        raise bad("the blob belongs to another item")
    if not 0 < chunk_size <= 64 * CHUNK_SIZE:
        raise bad(f"implausible chunk size {chunk_size}")
    ad = header + sha256
    aes = AESGCM(data_key)
    step = chunk_size + TAG_BYTES
    index = 0
    current = _read_exact(blob, step)
    while True:
        following = _read_exact(blob, step) if len(current) == step else b""
        final = not following
        if len(current) < TAG_BYTES:
            raise bad("truncated chunk")
        try:
            yield aes.decrypt(_nonce(prefix, index, final), current, ad)
        except InvalidTag:
            raise bad(f"chunk {index} does not authenticate") from None
        if final:
            return
        current = following
        index += 1


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    """Read ``n`` bytes unless the stream ends first (sockets may return short reads)."""
    parts: list[bytes] = []
    got = 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def encrypted_size(plain_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """The blob's size for ``plain_size`` bytes of content."""
    chunks = max(1, -(-plain_size // chunk_size))
    return HEADER_BYTES + plain_size + chunks * TAG_BYTES
