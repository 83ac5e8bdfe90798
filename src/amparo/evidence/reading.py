"""Reading preserved content back: decrypt a blob chunk by chunk, each chunk authenticated
before it is handed on, the whole checked against the item's SHA-256 and size; a missing or
damaged blob is logged and audit-logged as the error it is, never returned as data."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from amparo.errors import (
    BlobMissingError,
    BlobNotFoundError,
    EvidenceIntegrityError,
    NotFoundError,
)
from amparo.evidence import crypto
from amparo.evidence.backends import BlobBackend, blob_key
from amparo.evidence.model import EvidenceItem

log = logging.getLogger("amparo.evidence")

Report = Callable[[str, str, dict[str, Any]], None]
"""``(action, target, details)``: audit-log a problem found while reading (actor ``system``)."""


def readable(item: EvidenceItem) -> EvidenceItem:
    """``item`` when its content is still held; NotFoundError once purged or discarded."""
    if item.purged_at is not None or item.wrapped_key is None:
        raise NotFoundError(
            f"evidence item {item.id} was {item.purge_reason or 'purged'} on "
            f"{item.purged_at:%Y-%m-%d}; its content is gone",
            hint="only its record (hashes, source, reason) is kept",
        )
    return item


def decrypt(
    item: EvidenceItem, ring: crypto.Keyring, backend: BlobBackend, report: Report
) -> Iterator[bytes]:
    """The item's content in authenticated chunks (see the module docstring)."""
    assert item.wrapped_key is not None and item.kek_id is not None
    data_key = ring.unwrap(item.kek_id, item.wrapped_key, item.uuid, item=item.id)
    try:
        blob = backend.open(blob_key(item.uuid))
    except BlobNotFoundError:
        report_missing(item.id, backend, report)
        raise BlobMissingError(
            f"evidence item {item.id}: its encrypted content is missing from {backend.url}",
            hint="restore the blob store from backup; `amparo evidence verify` lists "
            "every missing item",
        ) from None
    return _checked(item, data_key, blob, report)


def _checked(item: EvidenceItem, data_key: bytes, blob: Any, report: Report) -> Iterator[bytes]:
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in crypto.decrypt_stream(
            data_key, item.uuid, bytes.fromhex(item.sha256), blob, item=item.id
        ):
            digest.update(chunk)
            size += len(chunk)
            yield chunk
    except EvidenceIntegrityError as exc:
        _report_damaged(item.id, exc.message, report)
        raise
    finally:
        blob.close()
    if digest.hexdigest() != item.sha256 or size != item.size:
        message = f"evidence item {item.id} failed its integrity check: SHA-256 or size"
        _report_damaged(item.id, message, report)
        raise EvidenceIntegrityError(message, hint="restore the blob from backup")


def _report_damaged(item_id: int, message: str, report: Report) -> None:
    log.error("%s", message)
    report("evidence.integrity_error", f"evidence:{item_id}", {"error": message})


def report_missing(item_id: int, backend: BlobBackend, report: Report) -> None:
    """Log and audit-log that an item's blob is missing."""
    log.error("evidence item %s: its blob is missing", item_id)
    report("evidence.missing", f"evidence:{item_id}", {"backend": backend.url})


def write_to(chunks: Iterable[bytes], dest: Path) -> None:
    """Write ``chunks`` to ``dest`` (mode 0600), which appears only once all were written
    (an integrity error raised by the last chunk leaves no file)."""
    dest = dest.expanduser()
    fd, tmp = tempfile.mkstemp(prefix=".amparo-evidence-", dir=dest.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
