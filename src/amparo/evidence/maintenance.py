"""Evidence housekeeping: purge by retention, verification and recovery, key rotation.

Each job is safe to interrupt and to run again: every step leaves the store consistent (a
purged row's data key is destroyed before its blob is deleted; a blob nobody owns is an
orphan that the next run removes; a re-wrapped key replaces the old one in one update).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from amparo.clock import Clock
from amparo.errors import AmparoError, BlobMissingError
from amparo.evidence.backends import blob_key, is_temp, uuid_of
from amparo.evidence.model import EvidenceItem, PurgeHook
from amparo.evidence.reading import report_missing

if TYPE_CHECKING:
    from amparo.evidence import crypto
    from amparo.evidence.backends import BlobBackend
    from amparo.store import Store
    from amparo.store.evidence import EvidenceRepository


class EvidenceStore(Protocol):
    """What maintenance needs of :class:`amparo.evidence.service.EvidenceStore` (which calls
    these functions; a Protocol, so the two modules do not import each other)."""

    store: Store
    records: EvidenceRepository
    clock: Clock
    purge_hooks: list[PurgeHook]

    @property
    def backend(self) -> BlobBackend: ...

    def keyring(self, *, create: bool = False) -> crypto.Keyring: ...

    def decrypt_item(self, item: EvidenceItem) -> Iterator[bytes]: ...

    def record_system(self, action: str, target: str, details: dict[str, Any]) -> None: ...

    def record(self, actor: str, action: str, target: str, details: dict[str, Any]) -> None: ...


log = logging.getLogger("amparo.evidence")


@dataclass
class OrphanSweep:
    removed: list[str] = field(default_factory=list)
    """Blob keys removed: blobs no held item owns, leftovers of interrupted writes."""
    young: int = 0
    """Such blobs left alone because they are younger than the grace period (a write that
    may still be in progress)."""


@dataclass
class PurgeReport:
    now: datetime
    dry_run: bool
    purged: list[int] = field(default_factory=list)
    """Items whose content was deleted (in a dry run: would be)."""
    held: int = 0
    """Expired items kept because they are on legal hold."""
    failed: list[tuple[int, str]] = field(default_factory=list)
    """Items marked purged whose blob could not be deleted (the next run removes it)."""
    orphans: OrphanSweep = field(default_factory=OrphanSweep)
    false_positives: list[int] = field(default_factory=list)
    """Items discarded because review decided them false positives and the undo grace
    (``review_undo_seconds``) has passed (in a dry run: would be)."""


@dataclass
class VerifyReport:
    checked: int = 0
    deep: bool = True
    damaged: list[tuple[int, str]] = field(default_factory=list)
    """Items whose blob fails its integrity check, with the reason."""
    missing: list[int] = field(default_factory=list)
    """Items whose blob is gone."""
    orphans: OrphanSweep = field(default_factory=OrphanSweep)

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.missing


@dataclass
class RotationReport:
    new_key: str
    rewrapped: int = 0
    retired: list[str] = field(default_factory=list)
    still_used: dict[str, int] = field(default_factory=dict)
    """Old keys that could not be retired because items still use them (written meanwhile
    by a process that had not yet seen the new key): run rotate-key --retire again."""


def purge(
    store: EvidenceStore,
    now: datetime | None,
    *,
    actor: str,
    dry_run: bool,
    grace: float,
) -> PurgeReport:
    now = now or store.clock()
    report = PurgeReport(now=now, dry_run=dry_run, held=store.records.held_expired_count(now))
    last = 0
    while batch := store.records.expired(now, after_id=last):
        last = batch[-1].id
        for stored in batch:
            if dry_run:
                report.purged.append(stored.id)
                continue
            # The row first: once it commits, the data key is gone and the blob is noise.
            if not store.records.mark_purged(
                stored.id,
                at=store.clock(),
                reason="expired",
                action="evidence.purge",
                actor=actor,
                expired_by=now,
            ):
                continue  # held or extended meanwhile
            report.purged.append(stored.id)
            try:
                store.backend.delete(blob_key(stored.uuid))
            except AmparoError as exc:
                report.failed.append((stored.id, exc.message))
    for hook in store.purge_hooks:
        report.false_positives.extend(hook(now, actor=actor, dry_run=dry_run))
    if not dry_run:
        report.orphans = sweep_orphans(store, grace=grace, actor=actor)
    log.info(
        "evidence purge%s: %d purged, %d false positives discarded, %d kept on legal hold, "
        "%d orphans removed",
        " (dry run)" if dry_run else "",
        len(report.purged),
        len(report.false_positives),
        report.held,
        len(report.orphans.removed),
    )
    return report


def sweep_orphans(
    store: EvidenceStore, *, grace: float, actor: str, repair: bool = True
) -> OrphanSweep:
    """Find blobs that no held item owns, older than ``grace`` seconds, and remove them
    when ``repair`` (otherwise only list them)."""
    sweep = OrphanSweep()
    # List first, then read the owners: a blob written and committed in between is seen as
    # owned; one written but not yet committed is young and left alone.
    listed = list(store.backend.list())
    owned = store.records.live_uuids()
    for key, age in listed:
        if not is_temp(key) and uuid_of(key) in owned:
            continue
        if age < grace:
            sweep.young += 1
            continue
        if repair:
            store.backend.delete(key)
            store.record(actor, "evidence.orphan_removed", key, {"age_seconds": round(age)})
            log.warning("removed orphaned evidence blob %s", key)
        sweep.removed.append(key)
    return sweep


def verify(
    store: EvidenceStore, *, deep: bool, repair: bool, grace: float, actor: str
) -> VerifyReport:
    report = VerifyReport(deep=deep)
    for batch in store.records.iter_live():
        for stored in batch:
            report.checked += 1
            if not deep:
                if not store.backend.exists(blob_key(stored.uuid)):
                    report.missing.append(stored.id)
                    report_missing(stored.id, store.backend, store.record_system)
                continue
            try:
                for _chunk in store.decrypt_item(stored):
                    pass
            except BlobMissingError:
                report.missing.append(stored.id)
            except AmparoError as exc:  # damaged, or its key is not in the keyring
                report.damaged.append((stored.id, exc.message))
    report.orphans = sweep_orphans(store, grace=grace, actor=actor, repair=repair)
    store.record(
        actor,
        "evidence.verify",
        "evidence",
        {
            "checked": report.checked,
            "deep": deep,
            "damaged": [i for i, _ in report.damaged],
            "missing": report.missing,
            "orphans_removed": len(report.orphans.removed) if repair else 0,
        },
    )
    return report


def rotate_key(store: EvidenceStore, *, actor: str, retire: bool) -> RotationReport:
    ring = store.keyring(create=True)
    new = ring.add()
    report = RotationReport(new_key=new.id)
    for batch in store.records.iter_live():
        changes = []
        for stored in batch:
            if stored.kek_id == new.id or stored.wrapped_key is None or stored.kek_id is None:
                continue
            data_key = ring.unwrap(stored.kek_id, stored.wrapped_key, stored.uuid, item=stored.id)
            kek_id, wrapped = ring.wrap(data_key, stored.uuid)
            changes.append((stored.id, stored.kek_id, kek_id, wrapped))
        if changes:
            report.rewrapped += store.records.rewrap(changes)
    sealed = store.store.secrets
    if sealed is not None:
        sealed.reseal()  # webhook signing secrets, sealed with the same keyring
    if retire:
        usage = store.records.kek_usage()
        if sealed is not None:
            for kek, n in sealed.usage().items():
                usage[kek] = usage.get(kek, 0) + n
        old = [k for k in ring.keys if k != ring.current]
        report.still_used = {k: usage[k] for k in old if usage.get(k)}
        report.retired = [k for k in old if not usage.get(k)]
        if report.retired:
            ring.retire(report.retired)
    if report.still_used:
        log.warning(
            "keys %s still wrap items written during the rotation; run rotate-key --retire again",
            ", ".join(report.still_used),
        )
    store.record(
        actor,
        "evidence.rotate_key",
        "evidence",
        {"new_key": new.id, "rewrapped": report.rewrapped, "retired": report.retired},
    )
    return report
