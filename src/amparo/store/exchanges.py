"""Collaborations, the records they fetched, their quarantine and the opinions outbox (the
exchanges work's repository; tables in ``models_exchanges.py``, migration 0009).

:class:`ExchangeRepository` is the one object callers hold: it keeps the collaborations and
their fetch state here, and inherits the records (:mod:`amparo.store.exchange_records`) and
the quarantine and opinions outbox (:mod:`amparo.store.exchange_outbox`).

The fetch runner (:mod:`amparo.exchanges.runner`) calls these inside one unit of work per
batch, together with the bank's own writes (``store.banks.add_entries`` /
``remove_entries``) and the batch's checkpoint: a batch lands whole or not at all.

``exchange_records`` is what makes deletions exact: a source names a deletion by its own
record id, and a signal leaves the bank only when no live record of any collaboration
feeding that bank still carries it (a record that changes its hash frees the old one).
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.exc import IntegrityError

from amparo.clock import as_utc
from amparo.errors import ConflictError, NotFoundError
from amparo.exchanges.model import Collaboration
from amparo.store.exchange_outbox import ExchangeOutbox, QueuedOpinion
from amparo.store.exchange_records import CHUNK, ExchangeRecords, Pair, RecordChanges, fingerprint
from amparo.store.models import BankRow
from amparo.store.models_exchanges import (
    CollaborationRow,
    ExchangeOpinionRow,
    ExchangeQuarantineRow,
    ExchangeRecordRow,
)
from amparo.store.uow import Database

__all__ = [
    "CHUNK",
    "CollaborationState",
    "ExchangeRepository",
    "Pair",
    "QueuedOpinion",
    "RecordChanges",
    "fingerprint",
]

_collab = cast(Table, CollaborationRow.__table__)
_record = cast(Table, ExchangeRecordRow.__table__)
_quar = cast(Table, ExchangeQuarantineRow.__table__)
_opinion = cast(Table, ExchangeOpinionRow.__table__)
_bank = cast(Table, BankRow.__table__)


@dataclass
class CollaborationState:
    """A collaboration with its bank and fetch state, as the runner and status read it."""

    collaboration: Collaboration
    bank_id: int
    checkpoint: dict[str, Any] | None
    generation: int
    full_in_progress: bool
    updated_at: datetime
    last_fetch_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    entries_added: int
    entries_removed: int

    @property
    def id(self) -> int:
        assert self.collaboration.id is not None
        return self.collaboration.id


class ExchangeRepository(ExchangeRecords, ExchangeOutbox):
    """Storage of the exchanges context. Every write joins an open unit of work."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- collaborations ---------------------------------------------------------------------

    def create(self, collab: Collaboration, bank_id: int, now: datetime) -> int:
        """Insert a collaboration (in the caller's transaction); its id."""
        try:
            with self.db.transaction(refresh=False) as tx:
                result = tx.conn.execute(
                    _collab.insert().values(
                        name=collab.name,
                        exchange=collab.exchange,
                        bank_id=bank_id,
                        settings=json.dumps(collab.settings, sort_keys=True),
                        credentials=collab.credentials,
                        interval_seconds=int(collab.interval_seconds),
                        enabled=bool(collab.enabled),
                        feedback=bool(collab.feedback),
                        created_at=now,
                        updated_at=now,
                        checkpoint=None,
                        generation=0,
                        full_in_progress=False,
                        entries_added=0,
                        entries_removed=0,
                    )
                )
                key = result.inserted_primary_key
                assert key is not None
                return int(key[0])
        except IntegrityError:
            raise ConflictError(
                f"collaboration {collab.name!r} already exists",
                hint="choose another name, or `amparo exchange remove` the old one first",
            ) from None

    def state(self, name: str) -> CollaborationState:
        with self.db.reading() as conn:
            row = conn.execute(_SELECT_STATE.where(_collab.c.name == name)).first()
        if row is None:
            raise NotFoundError(
                f"no collaboration named {name!r}", hint="see `amparo exchange list`"
            )
        return _state(row)

    def states(self) -> builtins.list[CollaborationState]:
        with self.db.reading() as conn:
            rows = conn.execute(_SELECT_STATE.order_by(_collab.c.name)).all()
        return [_state(r) for r in rows]

    def change(self, collab_id: int, values: dict[str, Any], now: datetime) -> None:
        """Change columns of a collaboration (``settings`` given as a dict)."""
        values = dict(values)
        if "settings" in values:
            values["settings"] = json.dumps(values["settings"], sort_keys=True)
        with self.db.transaction(refresh=False) as tx:
            tx.conn.execute(
                update(_collab).where(_collab.c.id == collab_id).values(updated_at=now, **values)
            )

    def delete(self, collab_id: int) -> None:
        """Delete a collaboration; its records, quarantine and opinions go with it."""
        with self.db.transaction(refresh=False) as tx:
            for table in (_record, _quar, _opinion):
                tx.conn.execute(delete(table).where(table.c.collab_id == collab_id))
            tx.conn.execute(delete(_collab).where(_collab.c.id == collab_id))

    # -- fetch state ------------------------------------------------------------------------

    def save_progress(
        self,
        collab_id: int,
        *,
        generation: int,
        full_in_progress: bool,
        added: int,
        removed: int,
        checkpoint: str | None = None,
    ) -> None:
        """Record a batch's progress in its transaction: the checkpoint to resume from
        (None: keep the stored one), the full-fetch state and the entry counters."""
        values: dict[str, Any] = {
            "generation": generation,
            "full_in_progress": full_in_progress,
            "entries_added": _collab.c.entries_added + added,
            "entries_removed": _collab.c.entries_removed + removed,
        }
        if checkpoint is not None:
            values["checkpoint"] = checkpoint
        with self.db.transaction(refresh=False) as tx:
            tx.conn.execute(update(_collab).where(_collab.c.id == collab_id).values(**values))

    def record_attempt(self, collab_id: int, now: datetime, error: str | None) -> None:
        """A fetch ended: when, and its error (None: success, also the last fetch time)."""
        values: dict[str, Any] = {"last_attempt_at": now, "last_error": error}
        if error is None:
            values["last_fetch_at"] = now
        with self.db.transaction(refresh=False) as tx:
            tx.conn.execute(update(_collab).where(_collab.c.id == collab_id).values(**values))


_SELECT_STATE = select(_collab, _bank.c.name.label("bank_name")).join(
    _bank, _bank.c.id == _collab.c.bank_id
)


def _state(row: Any) -> CollaborationState:
    return CollaborationState(
        collaboration=Collaboration(
            name=row.name,
            exchange=row.exchange,
            bank=row.bank_name,
            settings=json.loads(row.settings or "{}"),
            credentials=row.credentials,
            interval_seconds=int(row.interval_seconds),
            enabled=bool(row.enabled),
            feedback=bool(row.feedback),
            id=int(row.id),
            created_at=as_utc(row.created_at),
        ),
        bank_id=int(row.bank_id),
        checkpoint=json.loads(row.checkpoint) if row.checkpoint else None,
        generation=int(row.generation),
        full_in_progress=bool(row.full_in_progress),
        updated_at=as_utc(row.updated_at),
        last_fetch_at=as_utc(row.last_fetch_at),
        last_attempt_at=as_utc(row.last_attempt_at),
        last_error=row.last_error,
        entries_added=int(row.entries_added),
        entries_removed=int(row.entries_removed),
    )
