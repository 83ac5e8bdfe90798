"""Secrets at rest: webhook signing secrets are sealed with the evidence keyring.

A webhook secret must be recoverable (it signs every delivery), so it is encrypted, not
hashed: ``Keyring.seal`` (AES-256-GCM under the current key-encryption key, bound to
``webhook:<name>``). The store seals on write and opens on read, so callers see the plain
secret. Rows written before sealing existed hold the plain secret; :meth:`SecretBox.seal_plain`
encrypts them when an installation opens (a data migration that needs the keyring, which
Alembic does not have), and key rotation re-seals them under the new key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from sqlalchemy import Table, func, select, update

from amparo.errors import ConfigError
from amparo.store.models_actions import WebhookEndpointRow
from amparo.store.uow import Database

if TYPE_CHECKING:
    from amparo.evidence.crypto import Keyring

_endpoints = cast(Table, WebhookEndpointRow.__table__)
SEALED_PREFIX = "enc1:"


def webhook_context(name: str) -> str:
    return f"webhook:{name}"


class SecretBox:
    """Seals and opens the secrets the store keeps, with a keyring loaded on first use."""

    def __init__(self, db: Database, keyring: Callable[[], Keyring]) -> None:
        self._db = db
        self._keyring = keyring

    def seal(self, secret: str, context: str) -> str:
        return self._keyring().seal(secret, context)

    def open(self, stored: str, context: str) -> str:
        if not stored.startswith(SEALED_PREFIX):
            return stored  # written before sealing; sealed at the next open
        return self._keyring().unseal(stored, context)

    def seal_plain(self) -> int:
        """Encrypt every webhook secret still stored in clear; returns how many. Reads only
        (no keyring) when there is none."""
        return self._reseal(everything=False)

    def reseal(self) -> int:
        """Re-seal every webhook secret under the keyring's current key (after rotation)."""
        return self._reseal(everything=True)

    def usage(self) -> dict[str, int]:
        """How many sealed secrets each key-encryption key protects."""
        found: dict[str, int] = {}
        with self._db.reading() as conn:
            for (value,) in conn.execute(select(_endpoints.c.secret)):
                if value.startswith(SEALED_PREFIX):
                    kek = value.split(":", 2)[1]
                    found[kek] = found.get(kek, 0) + 1
        return found

    def _reseal(self, *, everything: bool) -> int:
        query = select(_endpoints.c.id, _endpoints.c.name, _endpoints.c.secret)
        if not everything:
            plain = ~_endpoints.c.secret.startswith(SEALED_PREFIX)
            with self._db.reading() as conn:
                if not conn.execute(select(func.count()).where(plain)).scalar():
                    return 0
            query = query.where(plain)
        ring = self._keyring()
        done = 0
        with self._db.transaction(refresh=False) as tx:
            for row in tx.conn.execute(query).all():
                context = webhook_context(row.name)
                current = row.secret
                if current.startswith(SEALED_PREFIX):
                    current = ring.unseal(current, context)
                tx.conn.execute(
                    update(_endpoints)
                    .where(_endpoints.c.id == row.id, _endpoints.c.secret == row.secret)
                    .values(secret=ring.seal(current, context))
                )
                done += 1
        return done


def open_sealed(box: SecretBox | None, stored: str, context: str) -> str:
    """Open ``stored`` with ``box``; a sealed value without a keyring is a configuration error."""
    if box is not None:
        return box.open(stored, context)
    if stored.startswith(SEALED_PREFIX):
        raise ConfigError(
            f"the secret of {context} is encrypted and this store has no keyring",
            hint="open the installation through amparo.Amparo (it configures the keyring)",
        )
    return stored
