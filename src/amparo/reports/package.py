"""Report packages: one zip a hotline or the police can take away.

``report.xml`` (CyberTipline form, with ``fileDetails``), ``report.json`` (generic form),
``files/<item>-<sha256>[.enc]`` (each confirmed file, AES-256-GCM encrypted under a fresh package
key unless the package is plain), ``manifest.json`` (SHA-256 of every member and of each
original file, and how files are encrypted) and ``custody.jsonl`` (the audit entries concerning
the case, the report and the files' evidence items, with their chain hashes).

An encrypted file is ``nonce (12 bytes) || ciphertext || tag (16 bytes)``, with the member's
name as associated data. The key is returned (and printed once by the CLI); it is kept nowhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amparo.errors import StorageError
from amparo.reports.cybertip_xml import report_xml
from amparo.reports.model import ReportData
from amparo.store.audit import ChainEntry

PACKAGE_FORMAT = "amparo-report-package"
PACKAGE_VERSION = 1
NONCE_BYTES = 12


@dataclass(frozen=True)
class PackageResult:
    path: Path
    files: int
    """Files included (confirmed items with a preserved copy)."""
    missing: tuple[int, ...]
    """Item ids whose file could not be included (no preserved copy)."""
    key: str | None
    """The package key (hex) when files are encrypted; shown once, stored nowhere."""


def encrypt_member(key: bytes, name: str, data: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, data, name.encode())


def decrypt_member(key: bytes, name: str, blob: bytes) -> bytes:
    """Inverse of :func:`encrypt_member` (raises ``cryptography.exceptions.InvalidTag``)."""
    return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], name.encode())


def write_package(
    out: Path,
    data: ReportData,
    *,
    read_file: Callable[[int], bytes],
    custody: Callable[[], Iterable[ChainEntry]],
    plain: bool = False,
) -> PackageResult:
    """Write the package to ``out`` atomically (temp file, then rename). ``read_file(item_id)``
    returns one confirmed file's bytes (from the evidence store), or raises ``LookupError``
    when there is no preserved copy; ``custody()`` the chain-of-custody entries, called once
    the files are read (so the reads themselves are in it)."""
    key = None if plain else AESGCM.generate_key(bit_length=256)
    manifest_members: dict[str, str] = {}
    originals: list[dict[str, object]] = []
    missing: list[int] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:

            def put(name: str, payload: bytes) -> None:
                manifest_members[name] = hashlib.sha256(payload).hexdigest()
                zf.writestr(name, payload)

            put("report.xml", report_xml(data).encode())
            put("report.json", _json(data.to_json()))
            for f in data.files:
                try:
                    content = read_file(f.item_id)
                except LookupError:
                    missing.append(f.item_id)
                    continue
                actual = hashlib.sha256(content).hexdigest()
                if actual != f.sha256:
                    raise StorageError(
                        f"the preserved copy of item {f.item_id} does not match its SHA-256",
                        hint="the evidence store is damaged; run its integrity check",
                    )
                name = f"files/{f.item_id}-{f.sha256}" + ("" if key is None else ".enc")
                put(name, content if key is None else encrypt_member(key, name, content))
                originals.append(
                    {
                        "member": name,
                        "item_id": f.item_id,
                        "original_file_name": f.file_name,
                        "sha256": f.sha256,
                        "md5": f.md5,
                        "size": len(content),
                    }
                )
            put(
                "custody.jsonl",
                "".join(
                    json.dumps(e.to_json(), sort_keys=True, ensure_ascii=False) + "\n"
                    for e in custody()
                ).encode(),
            )
            manifest = {
                "format": PACKAGE_FORMAT,
                "version": PACKAGE_VERSION,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "report_id": data.report_id,
                "case_id": data.case_id,
                "encryption": None
                if key is None
                else {
                    "algorithm": "AES-256-GCM",
                    "layout": "nonce (12 bytes) || ciphertext || tag (16 bytes)",
                    "associated_data": "the member name, UTF-8",
                    "key": "given to the recipient separately",
                },
                "members": manifest_members,
                "files": originals,
                "missing_items": missing,
            }
            zf.writestr("manifest.json", _json(manifest))
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return PackageResult(
        path=out, files=len(originals), missing=tuple(missing), key=key.hex() if key else None
    )


def _json(obj: object) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
