"""The audit log as the application reads and appends it (the hash chain itself, its
checkpoints, verification and export are in :mod:`amparo.store.audit`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select

from amparo.clock import as_utc
from amparo.store.models import AuditRow
from amparo.store.uow import Database

_audit = cast(Table, AuditRow.__table__)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    seq: int = 0
    """Position in the hash chain (1, 2, 3...)."""
    prev_hash: str = ""
    hash: str = ""
    """SHA-256 over the entry and ``prev_hash`` (see ``store.audit``)."""


class AuditLog:
    """Appends to and reads the audit log of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def append(
        self, action: str, target: str = "", details: dict[str, Any] | None = None, *, actor: str
    ) -> None:
        """Record one event: in the open unit of work when there is one (it commits or rolls
        back with the change it records), else in its own."""
        with self.db.transaction(refresh=False) as tx:
            tx.audit(actor, action, target, details or {})

    def entries(
        self,
        limit: int = 100,
        target: str | None = None,
        *,
        before: int | None = None,
        action: str | None = None,
    ) -> list[AuditEntry]:
        """The newest entries first (optionally about one ``target``, of one ``action``, or
        older than position ``before``)."""
        query = select(_audit).order_by(_audit.c.seq.desc()).limit(limit)
        if target is not None:
            query = query.where(_audit.c.target == target)
        if action is not None:
            query = query.where(_audit.c.action == action)
        if before is not None:
            query = query.where(_audit.c.seq < before)
        with self.db.reading() as conn:
            return [
                AuditEntry(
                    int(r.id),
                    as_utc(r.at),
                    r.actor,
                    r.action,
                    r.target,
                    json.loads(r.details),
                    seq=int(r.seq),
                    prev_hash=r.prev_hash,
                    hash=r.hash,
                )
                for r in conn.execute(query)
            ]
