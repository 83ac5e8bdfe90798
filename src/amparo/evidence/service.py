"""The evidence store: envelope-encrypted items with retention, legal hold and purge.

The types here are the contract the review, actions and reports layers build on.

Durability: :meth:`EvidenceStore.preserve` writes the encrypted blob first (atomically, under a
fresh random uuid), then commits the database row; it returns only after both. A crash in
between leaves a blob without a row, which no reader can reach and which
:meth:`EvidenceStore.verify` and :meth:`EvidenceStore.purge` remove. A row is therefore never
committed without its blob, and what ``preserve`` returned is never lost.
"""

from __future__ import annotations

import builtins
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from amparo.errors import (
    BlobMissingError,
    BlobNotFoundError,
    ConfigError,
    ConflictError,
    EvidenceIntegrityError,
    InputError,
    NotFoundError,
)
from amparo.events import MatchedContent, Source
from amparo.evidence import crypto
from amparo.evidence.backends import (
    ORPHAN_GRACE_SECONDS,
    BlobBackend,
    blob_key,
    new_item_uuid,
    open_backend,
)
from amparo.files import private_dir
from amparo.media.sniff import HEAD_BYTES, MIME_TYPES, media_kind, sniff
from amparo.store.models_evidence import EvidenceRecords, NewEvidence, StoredEvidence

if TYPE_CHECKING:
    from amparo.config import Settings
    from amparo.evidence.maintenance import PurgeReport, RotationReport, VerifyReport
    from amparo.store import Store

log = logging.getLogger("amparo.evidence")

_READ_BLOCK = 1024 * 1024
MAX_REASON = 1000


@dataclass(frozen=True)
class EvidenceItem:
    id: int
    sha256: str
    md5: str
    size: int
    mime: str | None
    file_name: str | None
    source: dict[str, Any]
    reason: str
    """Why it was kept: ``rule:<name>``, ``review``, ``decision:confirm``, ``manual``..."""
    case_id: int | None
    preserved_at: datetime
    expires_at: datetime | None
    """When purge may delete it; None: kept until discarded by hand."""
    legal_hold: bool
    purged_at: datetime | None
    matches: tuple[dict[str, Any], ...] = ()
    """The matches that caused preservation (bank, entry_id, signal_type, distance, category)."""
    media_kind: str | None = None
    """``photo``, ``video`` or None when not known."""
    hold_reason: str | None = None
    purge_reason: str | None = None
    """``expired`` or ``discarded: <why>`` once purged."""
    preserved_by: str = ""
    sightings: int = 1
    """How many times it was asked to be preserved (the first time included)."""

    @property
    def held(self) -> bool:
        """Whether the content is still held (not purged or discarded)."""
        return self.purged_at is None

    def as_dict(self) -> dict[str, Any]:
        """Metadata as JSON-ready values (no content, no key material)."""
        return {
            "id": self.id,
            "sha256": self.sha256,
            "md5": self.md5,
            "size": self.size,
            "mime": self.mime,
            "media_kind": self.media_kind,
            "file_name": self.file_name,
            "source": self.source,
            "reason": self.reason,
            "case_id": self.case_id,
            "matches": list(self.matches),
            "preserved_at": self.preserved_at.isoformat(),
            "preserved_by": self.preserved_by,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "legal_hold": self.legal_hold,
            "hold_reason": self.hold_reason,
            "purged_at": self.purged_at.isoformat() if self.purged_at else None,
            "purge_reason": self.purge_reason,
            "sightings": self.sightings,
        }


def _item(s: StoredEvidence) -> EvidenceItem:
    return EvidenceItem(
        id=s.id,
        sha256=s.sha256,
        md5=s.md5,
        size=s.size,
        mime=s.mime,
        file_name=s.file_name,
        source=s.source,
        reason=s.reason,
        case_id=s.case_id,
        preserved_at=s.preserved_at,
        expires_at=s.expires_at,
        legal_hold=s.legal_hold,
        purged_at=s.purged_at,
        matches=tuple(s.matches),
        media_kind=s.media_kind,
        hold_reason=s.hold_reason,
        purge_reason=s.purge_reason,
        preserved_by=s.preserved_by,
        sightings=s.sightings,
    )


@dataclass(frozen=True)
class _Digests:
    sha256: str
    md5: str
    size: int
    head: bytes


class PurgeHook(Protocol):
    """Run by every purge (see :meth:`EvidenceStore.on_purge`)."""

    def __call__(self, now: datetime, *, actor: str, dry_run: bool) -> list[int]: ...


class EvidenceStore:
    """Preserved content of one installation: encrypted at rest, integrity-checked on every
    read, every read audit-logged, kept for ``evidence_retention_days`` unless on legal hold.
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.records = EvidenceRecords(store)
        if self.settings.evidence_retention_days < 0:
            raise ConfigError(
                "evidence_retention_days must be 0 (keep until discarded) or more",
                hint="365 is the default",
            )
        self._ring_lock = threading.Lock()
        self.purge_hooks: list[PurgeHook] = []
        self._ring: crypto.Keyring | None = None
        self._ring_sig: tuple[int, int, int] | None = None

    # -- configuration --------------------------------------------------------------------

    @cached_property
    def backend(self) -> BlobBackend:
        """Where the encrypted blobs live (``evidence_url``)."""
        return open_backend(self.settings.evidence_url, self.settings.home)

    @property
    def keyring_path(self) -> Path:
        configured = self.settings.evidence_kek_file
        if configured:
            return Path(configured).expanduser()
        return self.settings.home / "keys" / "evidence.keys"

    def keyring(self, *, create: bool = False) -> crypto.Keyring:
        """The keyring, re-read when the file changed (another process rotated it). With
        ``create``, a missing keyring is created, but only while no evidence exists: a
        keyring that went missing must be restored, not silently replaced."""
        path = self.keyring_path
        with self._ring_lock:
            try:
                st = path.stat()
            except FileNotFoundError:
                if not create or self.records.kek_usage():
                    return crypto.Keyring.load(path)  # raises the "restore it" error
                self._ring = self._create_keyring(path)
                st = path.stat()
            sig = (st.st_mtime_ns, st.st_size, st.st_ino)
            if self._ring is None or sig != self._ring_sig:
                if st.st_mode & 0o077:
                    log.warning(
                        "the evidence keyring %s is readable by other users; chmod 600 it", path
                    )
                self._ring = crypto.Keyring.load(path)
                self._ring_sig = sig
            return self._ring

    @staticmethod
    def _create_keyring(path: Path) -> crypto.Keyring:
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

    def _expiry(self, now: datetime, retention_days: int | None) -> datetime | None:
        days = self.settings.evidence_retention_days if retention_days is None else retention_days
        if days < 0:
            raise InputError("retention_days must be 0 (keep until discarded) or more")
        return None if days == 0 else now + timedelta(days=days)

    # -- preserving ---------------------------------------------------------------------

    def preserve(
        self,
        data: bytes | Path,
        *,
        content: MatchedContent | None = None,
        reason: str,
        case_id: int | None = None,
        actor: str = "local",
        source: Source | None = None,
        retention_days: int | None = None,
    ) -> EvidenceItem:
        """Encrypt and keep ``data``; returns once it is durable (idempotent per SHA-256:
        the same content is stored once, each request recorded).

        ``source`` (else ``content.source``) says where it was seen. ``retention_days``
        overrides ``evidence_retention_days``; preserving held content again extends its
        retention to at least the new expiry, never shortens it.
        """
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON:
            raise InputError(
                "a reason is required to preserve evidence",
                hint="e.g. 'rule:<name>', 'review', 'decision:confirm', 'manual: ticket 123'",
            )
        if isinstance(data, Path) and not data.is_file():
            raise InputError(f"{data} is not a file")
        digests = _digest(data)
        if content is not None and content.sha256.lower() != digests.sha256:
            raise InputError(
                "the data given is not the content that matched (its SHA-256 differs)",
                hint="pass the bytes or file that were matched",
            )
        seen = source or (content.source if content is not None else Source())
        source_dict = seen.as_dict()
        file_name = seen.file_name or (data.name if isinstance(data, Path) else None)
        if file_name and "file_name" not in source_dict:
            source_dict["file_name"] = file_name
        matches = [m.to_json() for m in content.matches] if content is not None else []
        now = datetime.now(UTC)
        expires_at = self._expiry(now, retention_days)

        existing = self.records.find_live(digests.sha256)
        if existing is not None:
            return self._sighting(
                existing.id, now, actor, reason, case_id, source_dict, matches, expires_at
            )

        ring = self.keyring(create=True)
        item_uuid = new_item_uuid()
        data_key = crypto.new_data_key()
        kek_id, wrapped = ring.wrap(data_key, item_uuid)
        check = hashlib.sha256()
        blob = crypto.encrypt_chunks(
            data_key, item_uuid, bytes.fromhex(digests.sha256), _pieces(data, check)
        )
        key = blob_key(item_uuid)
        blob_size = self.backend.put(key, blob)
        try:
            if check.hexdigest() != digests.sha256:
                what = str(data) if isinstance(data, Path) else "the data"
                raise InputError(
                    f"{what} changed while it was being preserved", hint="preserve it again"
                )
            kind = sniff(digests.head)
            item_id = self.records.insert(
                NewEvidence(
                    uuid=item_uuid,
                    sha256=digests.sha256,
                    md5=digests.md5,
                    size=digests.size,
                    mime=(content.mime if content else None) or MIME_TYPES.get(kind or ""),
                    media_kind=(content.media_kind if content else None) or media_kind(kind),
                    file_name=file_name,
                    source=source_dict,
                    matches=matches,
                    reason=reason,
                    case_id=case_id,
                    actor=actor,
                    at=now,
                    expires_at=expires_at,
                    format_version=crypto.FORMAT_VERSION,
                    blob_size=blob_size,
                    kek_id=kek_id,
                    wrapped_key=wrapped,
                )
            )
        except Exception:
            # Not BaseException: an interrupt could land after the row committed, and a
            # committed row must keep its blob (a leftover blob is only an orphan).
            self._forget_blob(key)
            raise
        if item_id is None:  # another process preserved the same content meanwhile
            self._forget_blob(key)
            existing = self.records.find_live(digests.sha256)
            if existing is None:
                raise ConflictError("evidence changed concurrently", hint="preserve it again")
            return self._sighting(
                existing.id, now, actor, reason, case_id, source_dict, matches, expires_at
            )
        log.info("preserved evidence item %s (sha256 %s)", item_id, digests.sha256)
        return self.get(item_id)

    def _sighting(
        self,
        item_id: int,
        now: datetime,
        actor: str,
        reason: str,
        case_id: int | None,
        source: dict[str, Any],
        matches: builtins.list[dict[str, Any]],
        expires_at: datetime | None,
    ) -> EvidenceItem:
        # A repeat sighting extends retention to its own expiry when that is later.
        self.records.add_sighting(
            item_id,
            at=now,
            actor=actor,
            reason=reason,
            case_id=case_id,
            source=source,
            matches=matches,
            expires_at=expires_at,
        )
        return self.get(item_id)

    def _forget_blob(self, key: str) -> None:
        try:
            self.backend.delete(key)
        except Exception:  # verify/purge will remove it as an orphan
            log.warning("could not remove blob %s; it will be cleaned up as an orphan", key)

    # -- looking up -----------------------------------------------------------------------

    def get(self, item_id: int) -> EvidenceItem:
        return _item(self._stored(item_id))

    def _stored(self, item_id: int) -> StoredEvidence:
        stored = self.records.get(item_id)
        if stored is None:
            raise NotFoundError(
                f"no evidence item {item_id}", hint="list items with `amparo evidence list`"
            )
        return stored

    def find(self, sha256: str) -> EvidenceItem | None:
        """The held item with this content, if any."""
        stored = self.records.find_live(sha256.lower())
        return None if stored is None else _item(stored)

    def list(
        self,
        *,
        sha256: str | None = None,
        case_id: int | None = None,
        include_purged: bool = False,
        limit: int = 100,
        before_id: int | None = None,
    ) -> builtins.list[EvidenceItem]:
        """Item metadata, newest first; page with ``before_id``."""
        return [
            _item(s)
            for s in self.records.listing(
                sha256=sha256.lower() if sha256 else None,
                case_id=case_id,
                include_purged=include_purged,
                limit=max(1, min(limit, 1000)),
                before_id=before_id,
            )
        ]

    def sightings(self, item_id: int) -> builtins.list[dict[str, Any]]:
        """Every request to preserve the item: when, by whom, why, from where."""
        self._stored(item_id)
        return self.records.sightings(item_id)

    # -- reading --------------------------------------------------------------------------

    def read(self, item_id: int, *, actor: str) -> bytes:
        """Decrypt and integrity-check one item; every read is audit-logged."""
        return b"".join(self.iter_content(item_id, actor=actor))

    def iter_content(self, item_id: int, *, actor: str) -> Iterator[bytes]:
        """The item's content in chunks, each authenticated before it is yielded; the
        SHA-256 and size of the whole are checked at the end (a failure raises
        :class:`EvidenceIntegrityError` from the iterator). The read is audit-logged now,
        before any content is returned."""
        stored = self._readable(item_id)
        self.store.audit(
            "evidence.read",
            f"evidence:{item_id}",
            {"sha256": stored.sha256, "size": stored.size},
            actor=actor,
        )
        return self._decrypt(stored)

    def read_to(self, item_id: int, dest: Path, *, actor: str) -> EvidenceItem:
        """Write the item's content to ``dest`` (mode 0600); ``dest`` appears only once the
        whole content has passed its integrity check."""
        chunks = self.iter_content(item_id, actor=actor)
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
        return self.get(item_id)

    def _readable(self, item_id: int) -> StoredEvidence:
        stored = self._stored(item_id)
        if stored.purged_at is not None or stored.wrapped_key is None:
            raise NotFoundError(
                f"evidence item {item_id} was {stored.purge_reason or 'purged'} on "
                f"{stored.purged_at:%Y-%m-%d}; its content is gone",
                hint="only its record (hashes, source, reason) is kept",
            )
        return stored

    def _decrypt(self, stored: StoredEvidence) -> Iterator[bytes]:
        assert stored.wrapped_key is not None and stored.kek_id is not None
        data_key = self.keyring().unwrap(
            stored.kek_id, stored.wrapped_key, stored.uuid, item=stored.id
        )
        try:
            blob = self.backend.open(blob_key(stored.uuid))
        except BlobNotFoundError:
            self._report_missing(stored.id)
            raise BlobMissingError(
                f"evidence item {stored.id}: its encrypted content is missing from "
                f"{self.backend.url}",
                hint="restore the blob store from backup; `amparo evidence verify` lists "
                "every missing item",
            ) from None
        return self._checked(stored, data_key, blob)

    def _checked(self, stored: StoredEvidence, data_key: bytes, blob: Any) -> Iterator[bytes]:
        digest = hashlib.sha256()
        size = 0
        try:
            for chunk in crypto.decrypt_stream(
                data_key, stored.uuid, bytes.fromhex(stored.sha256), blob, item=stored.id
            ):
                digest.update(chunk)
                size += len(chunk)
                yield chunk
        except EvidenceIntegrityError as exc:
            self._report_damaged(stored.id, exc.message)
            raise
        finally:
            blob.close()
        if digest.hexdigest() != stored.sha256 or size != stored.size:
            message = f"evidence item {stored.id} failed its integrity check: SHA-256 or size"
            self._report_damaged(stored.id, message)
            raise EvidenceIntegrityError(message, hint="restore the blob from backup")

    def _report_damaged(self, item_id: int, message: str) -> None:
        log.error("%s", message)
        self.store.audit(
            "evidence.integrity_error", f"evidence:{item_id}", {"error": message}, actor="system"
        )

    def _report_missing(self, item_id: int) -> None:
        log.error("evidence item %s: its blob is missing", item_id)
        self.store.audit(
            "evidence.missing", f"evidence:{item_id}", {"backend": self.backend.url}, actor="system"
        )

    # -- hold, release, discard -------------------------------------------------------------

    def hold(self, item_id: int, *, reason: str, actor: str) -> EvidenceItem:
        """Place a legal hold: the item is kept past its expiry until released."""
        reason = reason.strip()
        if not reason:
            raise InputError("a legal hold needs a reason", hint="e.g. 'preservation request 42'")
        self._readable(item_id)
        if not self.records.set_hold(item_id, True, reason, actor=actor):
            raise ConflictError(f"evidence item {item_id} was purged meanwhile")
        return self.get(item_id)

    def release(self, item_id: int, *, actor: str) -> EvidenceItem:
        """Lift a legal hold; the item is purged at its expiry again."""
        stored = self._readable(item_id)
        if stored.legal_hold and not self.records.set_hold(item_id, False, None, actor=actor):
            raise ConflictError(f"evidence item {item_id} was purged meanwhile")
        return self.get(item_id)

    def discard(self, item_id: int, *, reason: str, actor: str) -> EvidenceItem:
        """Delete an item's content before its expiry (content that turned out not to match
        should not be kept); its record stays. Refused while the item is on legal hold."""
        reason = reason.strip()
        if not reason:
            raise InputError("discarding evidence needs a reason", hint="e.g. 'false positive'")
        stored = self._stored(item_id)
        if stored.purged_at is not None:
            return _item(stored)
        if stored.legal_hold:
            raise ConflictError(
                f"evidence item {item_id} is on legal hold ({stored.hold_reason})",
                hint="release the hold first if it may really be deleted",
            )
        now = datetime.now(UTC)
        if not self.records.mark_purged(
            item_id, at=now, reason=f"discarded: {reason}", action="evidence.discard", actor=actor
        ):
            raise ConflictError(f"evidence item {item_id} was held or purged meanwhile")
        self._forget_blob(blob_key(stored.uuid))
        return self.get(item_id)

    # -- maintenance ----------------------------------------------------------------------

    def on_purge(self, hook: PurgeHook) -> None:
        """Also run ``hook(now, actor=..., dry_run=...)`` in every purge; what it returns
        (the ids of items it discarded) is the report's ``false_positives``. The composition
        root gives it the review's false-positive discard (evidence knows nothing of review).
        """
        self.purge_hooks.append(hook)

    def purge(
        self,
        now: datetime | None = None,
        *,
        actor: str = "local",
        dry_run: bool = False,
        orphan_grace_seconds: float = ORPHAN_GRACE_SECONDS,
    ) -> PurgeReport:
        """Delete the content of every expired item not on legal hold (each logged), discard
        the copies of review false positives whose undo grace has passed by ``now``, then
        remove orphaned blobs older than ``orphan_grace_seconds``."""
        from amparo.evidence.maintenance import purge

        if now is not None and now.tzinfo is None:
            raise InputError("purge needs a timezone-aware time", hint="use datetime.now(UTC)")
        return purge(self, now, actor=actor, dry_run=dry_run, grace=orphan_grace_seconds)

    def verify(
        self,
        *,
        deep: bool = True,
        repair: bool = False,
        orphan_grace_seconds: float = ORPHAN_GRACE_SECONDS,
        actor: str = "local",
    ) -> VerifyReport:
        """Check that every held item is there and (``deep``) decrypts to its SHA-256, and
        list blobs no held item owns and leftovers of interrupted writes older than
        ``orphan_grace_seconds``. A verify only reports: those are deleted only with
        ``repair``."""
        from amparo.evidence.maintenance import verify

        return verify(self, deep=deep, repair=repair, grace=orphan_grace_seconds, actor=actor)

    def rotate_key(self, *, actor: str = "local", retire: bool = False) -> RotationReport:
        """Add a new key-encryption key, re-wrap every data key with it (content untouched)
        and, with ``retire``, remove the old keys once nothing uses them."""
        from amparo.evidence.maintenance import rotate_key

        return rotate_key(self, actor=actor, retire=retire)


def _digest(data: bytes | Path) -> _Digests:
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    size = 0
    head = b""
    for piece in _pieces(data):
        if len(head) < HEAD_BYTES:
            head += piece[: HEAD_BYTES - len(head)]
        sha.update(piece)
        md5.update(piece)
        size += len(piece)
    return _Digests(sha.hexdigest(), md5.hexdigest(), size, head)


def _pieces(data: bytes | Path, check: Any = None) -> Iterable[bytes]:
    """The content in blocks (a file is streamed, never read whole), fed to ``check``."""
    if isinstance(data, Path):
        with data.open("rb") as fh:
            while block := fh.read(_READ_BLOCK):
                if check is not None:
                    check.update(block)
                yield block
        return
    view = memoryview(data)
    for start in range(0, len(view), _READ_BLOCK):
        block = bytes(view[start : start + _READ_BLOCK])
        if check is not None:
            check.update(block)
        yield block
