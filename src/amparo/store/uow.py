"""One unit of work: a database transaction that carries the audit-log append.

Every write in Amparo goes through :meth:`Database.transaction`. A transaction opened while
another is open on the same database (in the same thread or task) *joins* it, so a
multi-step change made of several services' calls commits or rolls back as one::

    with store.transaction() as tx:
        cases.decide(...)            # the decision
        banks.set_entries_enabled()  # the false-positive count disabling an entry
        evidence.discard(...)        # the evidence no longer needed
        tx.audit("local", "review.decide", "item:7", {...})

Reads go through :meth:`Database.reading`, which uses the open transaction's connection when
there is one (on SQLite a second connection would wait for the first one's write lock).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DataError

import amparo.store.audit.chain as audit_chain
from amparo.errors import InputError

_CURRENT: ContextVar[UnitOfWork | None] = ContextVar("amparo_unit_of_work", default=None)


class UnitOfWork:
    """An open transaction: its connection, the audit append and what to do after commit."""

    def __init__(self, db: Database, conn: Connection) -> None:
        self.db = db
        self.conn = conn
        self.refresh = False
        """Whether a committed write affects matching or rules (this process then reloads)."""
        self._after: list[Callable[[], None]] = []

    def audit(
        self, actor: str, action: str, target: str = "", details: dict[str, Any] | None = None
    ) -> int:
        """Append one entry to the hash-chained audit log in this transaction (it rolls back
        with it); returns the entry's position. See :mod:`amparo.store.audit`."""
        return audit_chain.append(self.conn, actor, action, target, details or {})

    def hold_audit(self) -> None:
        """Take the audit chain's lock now (see :func:`amparo.store.audit.hold`)."""
        audit_chain.hold(self.conn)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the outermost transaction has committed (never on rollback)."""
        self._after.append(callback)


class Database:
    """The engine of one installation's database, and the transactions opened on it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.generation = 0
        """Bumped by every write this process commits that affects matching or rules, so
        its matcher and rule cache refresh at once."""

    def current(self) -> UnitOfWork | None:
        """The transaction open on this database in this context, if any."""
        tx = _CURRENT.get()
        return tx if tx is not None and tx.db is self else None

    @contextmanager
    def transaction(self, *, refresh: bool = True) -> Iterator[UnitOfWork]:
        """A write transaction, or the one already open (joined: it commits with it).
        ``refresh=False`` for writes to tables neither matching nor rules read (cases,
        evidence): those must not cost the next lookup a refresh."""
        outer = self.current()
        if outer is not None:
            outer.refresh = outer.refresh or refresh
            yield outer
            return
        with self.engine.connect() as conn, self._unit(conn, refresh) as tx:
            yield tx

    @contextmanager
    def held(self) -> Iterator[Connection]:
        """One connection kept across several transactions (:meth:`transaction_on`): what a
        temporary table filled once and read by several commits lives on."""
        if self.current() is not None:
            raise RuntimeError("held() inside an open transaction: it would not commit alone")
        with _refused_values(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def transaction_on(self, conn: Connection, *, refresh: bool = True) -> Iterator[UnitOfWork]:
        """A write transaction of its own on a connection from :meth:`held`."""
        with self._unit(conn, refresh) as tx:
            yield tx

    @contextmanager
    def _unit(self, conn: Connection, refresh: bool) -> Iterator[UnitOfWork]:
        """A transaction on ``conn`` as the context's unit of work; after it commits, the
        generation moves (``refresh``) and the after-commit callbacks run."""
        with _refused_values(), conn.begin():
            tx = UnitOfWork(self, conn)
            tx.refresh = refresh
            token = _CURRENT.set(tx)
            try:
                yield tx
            finally:
                _CURRENT.reset(token)
        if tx.refresh:
            self.generation += 1
        for callback in tx._after:
            callback()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection to read with: the open transaction's, or a new one."""
        tx = self.current()
        if tx is not None:
            yield tx.conn
            return
        with _refused_values(), self.engine.connect() as conn:
            yield conn


@contextmanager
def _refused_values() -> Iterator[None]:
    """A value the database cannot hold (a NUL character in text on PostgreSQL, a number out
    of its range) is the caller's bad input, not a failure of Amparo: a clear 400, not a 500."""
    try:
        yield
    except DataError as exc:
        raise InputError(
            "the database refused a value: " + _first_line(exc.orig),
            hint="text may not contain NUL characters, and numbers must fit in 64 bits",
        ) from None


def _first_line(error: BaseException | None) -> str:
    text = str(error or "").strip().splitlines()
    return text[0][:200] if text else "invalid value"
