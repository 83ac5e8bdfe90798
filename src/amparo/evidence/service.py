"""The evidence store: envelope-encrypted items with retention, legal hold and purge.

Its records (:mod:`amparo.evidence.model`) are the contract the review, actions and reports
layers build on.

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
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amparo.clock import Clock, utc_now
from amparo.config import LOCAL_ACTOR, SYSTEM_ACTOR
from amparo.errors import (
    BlobMissingError,
    ConfigError,
    ConflictError,
    InputError,
    NotFoundError,
)
from amparo.events import MatchedContent, Source
from amparo.evidence import crypto, reading
from amparo.evidence.backends import (
    ORPHAN_GRACE_SECONDS,
    BlobBackend,
    blob_key,
    new_item_uuid,
    open_backend,
)
from amparo.evidence.content import digest, pieces
from amparo.evidence.keyring import KeyringFile
from amparo.evidence.model import EvidenceItem, NewEvidence, PurgeHook
from amparo.media.sniff import MIME_TYPES, media_kind, sniff
from amparo.store.evidence import EvidenceRepository

if TYPE_CHECKING:
    from amparo.config import Settings
    from amparo.evidence.maintenance import PurgeReport, RotationReport, VerifyReport
    from amparo.store import Store

__all__ = ["BlobMissingError", "EvidenceItem", "EvidenceStore", "PurgeHook"]

log = logging.getLogger("amparo.evidence")

MAX_REASON = 1000


class EvidenceStore:
    """Preserved content of one installation: encrypted at rest, integrity-checked on every
    read, every read audit-logged, kept for ``evidence_retention_days`` unless on legal hold.
    ``clock`` is the wall time retention goes by.
    """

    def __init__(self, settings: Settings, store: Store, *, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.records = EvidenceRepository(store.db)
        if self.settings.evidence_retention_days < 0:
            raise ConfigError(
                "evidence_retention_days must be 0 (keep until discarded) or more",
                hint="365 is the default",
            )
        self.purge_hooks: list[PurgeHook] = []
        self._keyring = KeyringFile(self.keyring_path)

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
        return self._keyring.get(create=create, in_use=lambda: bool(self.records.kek_usage()))

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
        actor: str = LOCAL_ACTOR,
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
        digests = digest(data)
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
        now = self.clock()
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
            data_key, item_uuid, bytes.fromhex(digests.sha256), pieces(data, check)
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
        item = self.records.get(item_id)
        if item is None:
            raise NotFoundError(
                f"no evidence item {item_id}", hint="list items with `amparo evidence list`"
            )
        return item

    def find(self, sha256: str) -> EvidenceItem | None:
        """The held item with this content, if any."""
        return self.records.find_live(sha256.lower())

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
        return self.records.listing(
            sha256=sha256.lower() if sha256 else None,
            case_id=case_id,
            include_purged=include_purged,
            limit=max(1, min(limit, 1000)),
            before_id=before_id,
        )

    def sightings(self, item_id: int) -> builtins.list[dict[str, Any]]:
        """Every request to preserve the item: when, by whom, why, from where."""
        self.get(item_id)
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
        self.record(
            actor,
            "evidence.read",
            f"evidence:{item_id}",
            {"sha256": stored.sha256, "size": stored.size},
        )
        return self.decrypt_item(stored)

    def read_to(self, item_id: int, dest: Path, *, actor: str) -> EvidenceItem:
        """Write the item's content to ``dest`` (mode 0600); ``dest`` appears only once the
        whole content has passed its integrity check."""
        reading.write_to(self.iter_content(item_id, actor=actor), dest.expanduser())
        return self.get(item_id)

    def _readable(self, item_id: int) -> EvidenceItem:
        return reading.readable(self.get(item_id))

    def decrypt_item(self, item: EvidenceItem) -> Iterator[bytes]:
        return reading.decrypt(item, self.keyring(), self.backend, self.record_system)

    def record_system(self, action: str, target: str, details: dict[str, Any]) -> None:
        """Record what Amparo noticed on its own (a damaged or missing blob)."""
        self.record(SYSTEM_ACTOR, action, target, details)

    def record(self, actor: str, action: str, target: str, details: dict[str, Any]) -> None:
        """One audit entry (in the open unit of work, if any)."""
        with self.store.transaction(refresh=False) as tx:
            tx.audit(actor, action, target, details)

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
        should not be kept); its record stays. Refused while the item is on legal hold.

        The record is marked in the caller's transaction when one is open; the blob is
        deleted only once that commits (a deletion on disk or S3 cannot roll back)."""
        reason = reason.strip()
        if not reason:
            raise InputError("discarding evidence needs a reason", hint="e.g. 'false positive'")
        with self.store.transaction(refresh=False) as tx:
            item = self.get(item_id)
            if item.purged_at is not None:
                return item
            if item.legal_hold:
                raise ConflictError(
                    f"evidence item {item_id} is on legal hold ({item.hold_reason})",
                    hint="release the hold first if it may really be deleted",
                )
            if not self.records.mark_purged(
                item_id,
                at=self.clock(),
                reason=f"discarded: {reason}",
                action="evidence.discard",
                actor=actor,
            ):
                raise ConflictError(f"evidence item {item_id} was held or purged meanwhile")
            key = blob_key(item.uuid)
            tx.after_commit(lambda: self._forget_blob(key))
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
        actor: str = LOCAL_ACTOR,
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
        actor: str = LOCAL_ACTOR,
    ) -> VerifyReport:
        """Check that every held item is there and (``deep``) decrypts to its SHA-256, and
        list blobs no held item owns and leftovers of interrupted writes older than
        ``orphan_grace_seconds``. A verify only reports: those are deleted only with
        ``repair``."""
        from amparo.evidence.maintenance import verify

        return verify(self, deep=deep, repair=repair, grace=orphan_grace_seconds, actor=actor)

    def rotate_key(self, *, actor: str = LOCAL_ACTOR, retire: bool = False) -> RotationReport:
        """Add a new key-encryption key, re-wrap every data key with it (content untouched)
        and, with ``retire``, remove the old keys once nothing uses them."""
        from amparo.evidence.maintenance import rotate_key

        return rotate_key(self, actor=actor, retire=retire)

    # hotline: assessment

    def expire_in(self, item_id: int, days: int, *, actor: str, reason: str) -> EvidenceItem:
        """Shorten an item's retention to ``days`` from now (content judged not to need
        keeping); never lengthens it, and a legal hold still keeps the item past it. The
        change is audit-logged as ``evidence.retention`` (in the caller's unit of work when
        one is open)."""
        reason = reason.strip()
        if not reason:
            raise InputError("shortening retention needs a reason", hint="e.g. 'not illegal'")
        if days < 0:
            raise InputError("days must be 0 or more", hint="0 expires it at the next purge")
        item = self.get(item_id)
        if not self.records.shorten_expiry(
            item_id, self.clock() + timedelta(days=days), actor=actor, reason=reason
        ):
            return item  # it already expires sooner: nothing changed
        return self.get(item_id)
