"""Named leases: an expiring lock in the database, so exactly one process (on any machine
sharing the database) does a piece of background work at a time, and a holder that died lets
go when its lease expires.

Taking a lease is ONE statement, ``INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE the
held lease has expired RETURNING token``: the database decides atomically whether the row was
inserted, taken over or left alone, on SQLite (its writes are serialised) and on PostgreSQL
(the conflicting row is locked and the ``WHERE`` re-checked on its newest version), so two
processes racing for a free or expired lease never both get it. No read-then-write window.

Renewing and releasing name the holder's ``token``: a holder whose lease was taken over
(it stalled past the expiry) learns so from ``renew`` returning False, and can never release
the new holder's lease. Times come from the caller's clock (tests move it; every process of
an installation must keep its clock roughly right, as for any lease).
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from amparo.clock import Clock, as_utc, utc_now
from amparo.store.models_exchanges import LeaseRow
from amparo.store.uow import Database

_lease = cast(Table, LeaseRow.__table__)


def default_holder() -> str:
    """Who this process is, for status displays (host:pid); the token is what counts."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    expires_at: datetime


class LeaseRepository:
    """Take, renew, release and read named leases. Writes join an open unit of work (a
    batch renews its lease in its own transaction: losing the lease rolls the batch back)."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self.db = db
        self.clock = clock

    def acquire(
        self, name: str, holder: str, ttl: float, now: datetime | None = None
    ) -> str | None:
        """Take the lease ``name`` for ``ttl`` seconds if nobody holds it or its holder's
        time ran out; return the new token, or None when someone else holds it."""
        now = now or self.clock()
        token = secrets.token_hex(16)
        values = {
            "name": name,
            "holder": holder[:200],
            "token": token,
            "expires_at": now + timedelta(seconds=ttl),
        }
        with self.db.transaction(refresh=False) as tx:
            got = tx.conn.execute(_take_over(tx.conn, values, now)).scalar()
        return token if got == token else None

    def renew(self, name: str, token: str, ttl: float, now: datetime | None = None) -> bool:
        """Extend the lease held with ``token``; False when it is no longer ours."""
        now = now or self.clock()
        with self.db.transaction(refresh=False) as tx:
            result = tx.conn.execute(
                update(_lease)
                .where(_lease.c.name == name, _lease.c.token == token)
                .values(expires_at=now + timedelta(seconds=ttl))
            )
            return bool(result.rowcount)

    def release(self, name: str, token: str) -> bool:
        """Let the lease go (only if still ours); True when it was."""
        with self.db.transaction(refresh=False) as tx:
            result = tx.conn.execute(
                delete(_lease).where(_lease.c.name == name, _lease.c.token == token)
            )
            return bool(result.rowcount)

    def get(self, name: str, now: datetime | None = None) -> Lease | None:
        """The lease on ``name`` while it is held (an expired one reads as None)."""
        now = now or self.clock()
        with self.db.reading() as conn:
            row = conn.execute(select(_lease).where(_lease.c.name == name)).first()
        if row is None or as_utc(row.expires_at) <= now:
            return None
        return Lease(row.name, row.holder, as_utc(row.expires_at))


def _take_over(conn: Connection, values: dict[str, Any], now: datetime) -> Any:
    """The one conditional statement: insert, or take over an expired lease."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(_lease).values(**values)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[_lease.c.name],
        set_={
            "holder": excluded.holder,
            "token": excluded.token,
            "expires_at": excluded.expires_at,
        },
        where=_lease.c.expires_at <= now,
    ).returning(_lease.c.token)
