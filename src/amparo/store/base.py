"""The store: one installation's database, opened and migrated, and its repositories.

Nothing outside the storage package talks to SQLAlchemy. The repositories are organised by
subject (banks and entries, the change log, the audit log); every write goes through the one
unit of work (:mod:`amparo.store.uow`), so writes by several repositories commit as one.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import SQLAlchemyError

from amparo.config import Settings
from amparo.store import audit as audit_chain
from amparo.store.audit_log import AuditLog
from amparo.store.banks import BankRepository
from amparo.store.changelog import ChangeLog
from amparo.store.db import make_engine, migrate
from amparo.store.models import CounterRow
from amparo.store.secrets import SecretBox, open_sealed
from amparo.store.uow import Database, UnitOfWork

if TYPE_CHECKING:
    from amparo.evidence.crypto import Keyring

_log = logging.getLogger(__name__)

_counter = cast(Table, CounterRow.__table__)


class Store:
    """Persistent state of one Amparo installation."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        migrate(self.engine)
        self.db = Database(self.engine)
        """Transactions (units of work) and reads; see :mod:`amparo.store.uow`."""
        self.changes = ChangeLog(self.db)
        """The entry change log indexes catch up from."""
        self.banks = BankRepository(self.db, self.changes)
        """Banks and their entries."""
        self.audit_log = AuditLog(self.db)
        """Appends to and reads the audit log."""
        self.secrets: SecretBox | None = None
        """Seals webhook secrets at rest; set by :meth:`configure_secrets`."""
        with self.db.transaction(refresh=False) as tx:
            for name, value in (("entry_seq", 0), ("installation_id", secrets.randbits(62))):
                exists = tx.conn.execute(select(_counter.c.value).where(_counter.c.name == name))
                if exists.first() is None:
                    tx.conn.execute(insert(_counter).values(name=name, value=value))
            self.installation_id = int(
                tx.conn.execute(
                    select(_counter.c.value).where(_counter.c.name == "installation_id")
                ).scalar_one()
            )

    def close(self) -> None:
        # What this process wrote since the last checkpoint gets signed before it goes.
        try:
            audit_chain.flush(self.engine)
        except SQLAlchemyError as exc:  # closing must not fail; verify shows the gap
            _log.warning("could not sign the audit chain's head at close: %s", exc)
        self.engine.dispose()

    @property
    def generation(self) -> int:
        """Bumped by every write this process commits that affects matching or rules."""
        return self.db.generation

    def transaction(self, *, refresh: bool = True) -> AbstractContextManager[UnitOfWork]:
        """A unit of work: every write made inside it (by any service) and its audit
        entries commit together (see :mod:`amparo.store.uow`)."""
        return self.db.transaction(refresh=refresh)

    # -- configuration ----------------------------------------------------------------------

    def configure_audit(
        self, settings: Settings, clock: Callable[[], datetime] | None = None
    ) -> None:
        """Sign audit checkpoints with the installation's key every
        ``settings.audit_checkpoint_every`` entries, at most every
        ``settings.audit_checkpoint_seconds`` when anything was written, and at close."""
        audit_chain.configure(
            self.engine,
            audit_chain.AuditSigner(audit_key_path(settings)),
            settings.audit_checkpoint_every,
            settings.audit_checkpoint_seconds,
            clock,
        )

    def configure_secrets(self, keyring: Callable[[], Keyring]) -> None:
        """Seal secrets (webhook signing secrets) with ``keyring`` (loaded on first use), and
        encrypt those an older version stored in clear."""
        self.secrets = SecretBox(self.db, keyring)
        self.secrets.seal_plain()

    def seal_secret(self, secret: str, context: str) -> str:
        """What to store for ``secret``: sealed when a keyring is configured."""
        return self.secrets.seal(secret, context) if self.secrets is not None else secret

    def open_secret(self, stored: str, context: str) -> str:
        """The secret a stored value holds."""
        return open_sealed(self.secrets, stored, context)


def audit_key_path(settings: Settings) -> Path:
    """Where the audit signing key lives: ``audit_signing_key_file``, else under <home>."""
    if settings.audit_signing_key_file:
        return Path(settings.audit_signing_key_file).expanduser()
    return settings.home / "keys" / "audit-signing.key"
