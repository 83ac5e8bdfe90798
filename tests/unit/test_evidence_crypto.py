"""The evidence blob format and keyring: round trips, and every kind of tampering detected."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amparo.errors import ConfigError, EvidenceIntegrityError
from amparo.evidence import crypto

UUID = "0123456789abcdef0123456789abcdef"


def _seal(data: bytes, chunk_size: int, key: bytes | None = None) -> tuple[bytes, bytes]:
    key = key or crypto.new_data_key()
    sha = hashlib.sha256(data).digest()
    pieces = [data[i : i + 7] for i in range(0, len(data), 7)]  # any input piece size
    return key, b"".join(crypto.encrypt_chunks(key, UUID, sha, pieces, chunk_size=chunk_size))


def _open(key: bytes, blob: bytes, data: bytes, uuid: str = UUID) -> bytes:
    sha = hashlib.sha256(data).digest()
    return b"".join(crypto.decrypt_stream(key, uuid, sha, io.BytesIO(blob), item=1))


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300), chunk_size=st.integers(min_value=1, max_value=64))
def test_any_content_round_trips(data: bytes, chunk_size: int) -> None:
    key, blob = _seal(data, chunk_size)
    assert len(blob) == crypto.encrypted_size(len(data), chunk_size)
    assert _open(key, blob, data) == data


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=1, max_size=200), chunk_size=st.integers(1, 32), where=st.data())
def test_any_flipped_bit_is_detected(data: bytes, chunk_size: int, where: st.DataObject) -> None:
    key, blob = _seal(data, chunk_size)
    damaged = bytearray(blob)
    offset = where.draw(st.integers(0, len(blob) - 1))
    damaged[offset] ^= 1 << where.draw(st.integers(0, 7))
    with pytest.raises(EvidenceIntegrityError, match="evidence item 1"):
        _open(key, bytes(damaged), data)


def _chunks(blob: bytes, chunk_size: int) -> tuple[bytes, list[bytes]]:
    body = blob[crypto.HEADER_BYTES :]
    step = chunk_size + crypto.TAG_BYTES
    return blob[: crypto.HEADER_BYTES], [body[i : i + step] for i in range(0, len(body), step)]


@pytest.mark.parametrize("size", [32, 40])
def test_truncation_reordering_and_appending_are_detected(size: int) -> None:
    data = secrets.token_bytes(size)
    key, blob = _seal(data, 8)
    header, chunks = _chunks(blob, 8)
    attempts = {
        "truncated at a chunk boundary": header + b"".join(chunks[:-1]),
        "last chunk dropped mid-way": blob[:-5],
        "two chunks swapped": header + chunks[1] + chunks[0] + b"".join(chunks[2:]),
        "a chunk appended": blob + chunks[0],
        "header only": header,
        "nothing": b"",
    }
    for what, tampered in attempts.items():
        with pytest.raises(EvidenceIntegrityError):
            _open(key, tampered, data)
            pytest.fail(what)


def test_blob_is_bound_to_its_item_its_content_and_its_key() -> None:
    data = b"some content"
    key, blob = _seal(data, 4)
    with pytest.raises(EvidenceIntegrityError, match="another item"):
        _open(key, blob, data, uuid="f" * 32)
    with pytest.raises(EvidenceIntegrityError):
        _open(key, blob, b"other content")  # the recorded SHA-256 is in the associated data
    with pytest.raises(EvidenceIntegrityError):
        _open(crypto.new_data_key(), blob, data)
    assert data not in blob


def test_unknown_format_version_is_refused() -> None:
    data = b"x" * 10
    key, blob = _seal(data, 4)
    newer = blob[:8] + (2).to_bytes(2, "big") + blob[10:]
    with pytest.raises(EvidenceIntegrityError, match="version 2"):
        _open(key, newer, data)


def test_keyring_wraps_binds_and_survives_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "evidence.keys"
    path.parent.mkdir()
    ring = crypto.Keyring.create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        crypto.Keyring.create(path)
    data_key = crypto.new_data_key()
    kek_id, wrapped = ring.wrap(data_key, UUID)
    assert kek_id == ring.current and len(wrapped) == 60 and data_key not in wrapped
    again = crypto.Keyring.load(path)
    assert again.unwrap(kek_id, wrapped, UUID, item=5) == data_key
    with pytest.raises(EvidenceIntegrityError, match="item 5"):
        again.unwrap(kek_id, wrapped, "f" * 32, item=5)  # a key moved to another item's row
    new = again.add()
    assert again.current == new.id and crypto.Keyring.load(path).current == new.id
    again.retire([kek_id])
    with pytest.raises(ConfigError, match="not in the keyring"):
        crypto.Keyring.load(path).unwrap(kek_id, wrapped, UUID, item=5)
    with pytest.raises(ConfigError, match="current"):
        again.retire([new.id])


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"format": "other", "version": 1}),
        json.dumps({"format": crypto.KEYRING_FORMAT, "version": 1, "current": "a", "keys": []}),
        json.dumps(
            {
                "format": crypto.KEYRING_FORMAT,
                "version": 1,
                "current": "a",
                "keys": [{"id": "a", "key": "c2hvcnQ=", "created_at": "2026-01-01T00:00:00+00:00"}],
            }
        ),
    ],
)
def test_malformed_keyrings_are_clear_errors(tmp_path: Path, body: str) -> None:
    path = tmp_path / "k"
    path.write_text(body)
    with pytest.raises(ConfigError, match=str(path)):
        crypto.Keyring.load(path)
