"""Persistence of share-back proposals: a confirmed case item proposed to a bank, waiting for
a curator. The service (:mod:`amparo.exchanges.proposals`) writes the audit entries in the
same transactions."""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, tuple_, update

from amparo.clock import as_utc
from amparo.errors import ConflictError
from amparo.store.models import BankRow, EntryRow, signal_key
from amparo.store.models_exchanges import CollaborationRow
from amparo.store.models_retro import ProposalRow
from amparo.store.uow import Database, UnitOfWork

_proposal = cast(Table, ProposalRow.__table__)
_bank = cast(Table, BankRow.__table__)
_entry = cast(Table, EntryRow.__table__)
_collab = cast(Table, CollaborationRow.__table__)

PROPOSAL_STATES = ("pending", "approved", "rejected")


@dataclass(frozen=True)
class Proposal:
    """One proposal as stored, with its bank's name."""

    id: int
    item_id: int
    bank: str
    state: str
    """``pending``, ``approved`` or ``rejected``."""
    proposed_by: str
    proposed_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    note: str | None
    jurisdiction: str | None
    entries: tuple[tuple[str, str], ...]
    """On approval: the ``(signal type, signal)`` pairs added to the bank."""

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["entries"] = [list(e) for e in self.entries]
        return data


_SELECT = select(_proposal, _bank.c.name.label("bank_name")).join(
    _bank, _bank.c.id == _proposal.c.bank_id
)


def _proposal_of(row: Any) -> Proposal:
    return Proposal(
        id=int(row.id),
        item_id=int(row.item_id),
        bank=row.bank_name,
        state=row.state,
        proposed_by=row.proposed_by,
        proposed_at=as_utc(row.proposed_at),
        decided_by=row.decided_by,
        decided_at=as_utc(row.decided_at),
        reason=row.reason,
        note=row.note,
        jurisdiction=row.jurisdiction,
        entries=tuple((str(t), str(v)) for t, v in json.loads(row.entries or "[]")),
    )


class ProposalRepository:
    """Proposals: created pending, decided once."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        tx: UnitOfWork,
        *,
        item_id: int,
        bank_id: int,
        proposed_by: str,
        at: datetime,
        note: str | None,
        jurisdiction: str | None,
    ) -> int:
        """A new pending proposal; ConflictError when one is pending for the item and bank."""
        key = f"{item_id}:{bank_id}"
        pending = tx.conn.execute(
            select(_proposal.c.id).where(_proposal.c.pending_key == key)
        ).first()
        if pending is not None:
            raise ConflictError(
                f"item {item_id} is already proposed to this bank (proposal {pending.id})",
                hint="a curator approves or rejects it: `amparo bank proposals`",
            )
        return int(
            tx.conn.execute(
                insert(_proposal)
                .values(
                    item_id=item_id,
                    bank_id=bank_id,
                    state="pending",
                    pending_key=key,
                    proposed_by=proposed_by,
                    proposed_at=at,
                    note=note,
                    jurisdiction=jurisdiction,
                    entries="[]",
                )
                .returning(_proposal.c.id)
            ).scalar_one()
        )

    def get(self, proposal_id: int) -> Proposal | None:
        with self.db.reading() as conn:
            row = conn.execute(_SELECT.where(_proposal.c.id == proposal_id)).first()
        return None if row is None else _proposal_of(row)

    def list(
        self, *, state: str | None = None, bank_id: int | None = None, limit: int = 100
    ) -> list[Proposal]:
        """Proposals, oldest first (a curator's queue)."""
        query = _SELECT
        if state is not None:
            query = query.where(_proposal.c.state == state)
        if bank_id is not None:
            query = query.where(_proposal.c.bank_id == bank_id)
        with self.db.reading() as conn:
            rows = conn.execute(query.order_by(_proposal.c.id).limit(limit))
            return [_proposal_of(r) for r in rows]

    def decide(
        self,
        tx: UnitOfWork,
        proposal_id: int,
        *,
        state: str,
        by: str,
        at: datetime,
        reason: str | None = None,
        entries: builtins.list[tuple[str, str]] | None = None,
    ) -> None:
        """Approve or reject a pending proposal; ConflictError when it is no longer pending
        (another curator decided it first)."""
        assert state in ("approved", "rejected")
        result = tx.conn.execute(
            update(_proposal)
            .where(_proposal.c.id == proposal_id, _proposal.c.state == "pending")
            .values(
                state=state,
                pending_key=None,
                decided_by=by,
                decided_at=at,
                reason=reason,
                entries=json.dumps([list(e) for e in entries or []]),
            )
        )
        if not result.rowcount:
            raise ConflictError(
                f"proposal {proposal_id} is no longer pending",
                hint="see `amparo bank proposals --state all`",
            )


def signals_in_bank(
    db: Database, bank_id: int, signals: builtins.list[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which ``(type, signal)`` already have a row in the bank, in any state (active,
    disabled, paused or removed): an approval adds only the others, never re-enabling or
    rewriting what a curator or a source decided."""
    if not signals:
        return set()
    keys = {(t, signal_key(v)): (t, v) for t, v in signals}
    with db.reading() as conn:
        rows = conn.execute(
            select(_entry.c.signal_type, _entry.c.signal_key).where(
                _entry.c.bank_id == bank_id,
                tuple_(_entry.c.signal_type, _entry.c.signal_key).in_(list(keys)),
            )
        ).all()
    return {keys[(r.signal_type, r.signal_key)] for r in rows}


def collaborations_feeding(db: Database, bank_id: int) -> builtins.list[str]:
    """Names of the collaborations that fill a bank from a source."""
    with db.reading() as conn:
        rows = conn.execute(select(_collab.c.name).where(_collab.c.bank_id == bank_id)).all()
    return sorted(r.name for r in rows)
