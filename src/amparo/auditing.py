"""The audit use cases: read the audit log, verify it, export it, sign its head.

The CLI (``amparo audit``), the ``/v1/audit`` routes and the demo call :class:`AuditService`
(``Amparo.audit``); the chain itself (hashes, checkpoints, verification) lives in
:mod:`amparo.store.audit`. An export is verified without an installation
(:func:`verify_export`), so that function is offered here as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from amparo.config import Settings
from amparo.store import AuditEntry, Store
from amparo.store.audit import (
    AuditChain,
    AuditSigner,
    Checkpoint,
    VerifyReport,
    key_id,
    load_public_key,
    public_key_pem,
    verify_export,
)
from amparo.store.base import audit_key_path

__all__ = [
    "AuditService",
    "Checkpoint",
    "VerifyReport",
    "key_id",
    "load_public_key",
    "public_key_pem",
    "verify_export",
]


class AuditService:
    """The audit log of one installation, and the key that signs its checkpoints."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.key_path: Path = audit_key_path(settings)
        """Where the signing key lives (``audit_signing_key_file``, else under <home>)."""
        self.signer = AuditSigner(self.key_path)
        """Signs checkpoints; the key is created on first use."""
        self._store = store
        self._chain = AuditChain(store.db)

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The key that verifies checkpoint signatures (the signing key is created if there
        is none yet): what to give auditors out of band."""
        return self.signer.public_key

    def existing_public_key(self) -> Ed25519PublicKey | None:
        """The public key when a signing key exists; None (and none created) otherwise."""
        return self.signer.public_key if self.key_path.exists() else None

    def entries(
        self,
        limit: int = 100,
        target: str | None = None,
        *,
        action: str | None = None,
        before: int | None = None,
    ) -> list[AuditEntry]:
        """The newest entries first (optionally about one ``target``, of one ``action``, or
        older than position ``before``)."""
        return self._store.audit_log.entries(limit, target, action=action, before=before)

    def verify(self, public_key: Ed25519PublicKey | None = None) -> VerifyReport:
        """Check every hash, link and checkpoint. Signatures are checked with ``public_key``,
        else with the installation's key when one exists; the report's ``checked_key`` is
        None when they could not be checked."""
        return self._chain.verify(public_key or self.existing_public_key())

    def export(self) -> Iterator[str]:
        """The whole chain as JSON Lines, with the public key, for offline verification."""
        return self._chain.export_lines(self.public_key)

    def checkpoint(self) -> Checkpoint | None:
        """Sign the chain's head now; None when the log is empty."""
        return self._chain.checkpoint(self.signer)

    def flush(self) -> Checkpoint | None:
        """Sign the head if this process appended entries since the last checkpoint."""
        return self._chain.flush()
