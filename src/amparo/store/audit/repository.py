"""The audit chain of one database, for the services outside ``store/`` (they are given this,
never the engine)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from amparo.audit_chain import ChainEntry, Checkpoint
from amparo.store.audit import chain
from amparo.store.audit.export import export_lines
from amparo.store.audit.signing import AuditSigner
from amparo.store.audit.verify import VerifyReport, verify_store

if TYPE_CHECKING:
    from amparo.store.uow import Database


class AuditChain:
    """Reads, verification, export and checkpoints of the chain held in ``db``. Appends go
    through the unit of work (:meth:`amparo.store.uow.UnitOfWork.audit`)."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine

    def entries(self, *, targets: Iterable[str] | None = None) -> Iterator[ChainEntry]:
        """Entries in chain order, optionally only those about ``targets``."""
        return chain.iter_entries(self._engine, targets=targets)

    def checkpoints(self) -> list[Checkpoint]:
        return chain.list_checkpoints(self._engine)

    def verify(self, public_key: Ed25519PublicKey | None) -> VerifyReport:
        """Check the chain; checkpoint signatures too when ``public_key`` is given."""
        return verify_store(self._engine, public_key)

    def export_lines(self, public_key: Ed25519PublicKey | None) -> Iterator[str]:
        """The chain as JSON Lines (see :mod:`amparo.store.audit.export`)."""
        return export_lines(self._engine, public_key)

    def checkpoint(self, signer: AuditSigner) -> Checkpoint | None:
        """Sign the head now; None when the log is empty."""
        return chain.checkpoint(self._engine, signer)

    def flush(self) -> Checkpoint | None:
        """Sign the head if entries were appended through this process since the last
        checkpoint (see :func:`amparo.store.audit.chain.flush`)."""
        return chain.flush(self._engine)
