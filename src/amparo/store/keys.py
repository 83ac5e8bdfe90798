"""API keys at rest: only a SHA-256 of each key is stored, next to a short public lookup id.

Keys are 32 random bytes, so a fast hash is the right choice (there is nothing to brute-force
that a slow hash would protect); the lookup id lets a key be found without comparing hashes
in SQL, and the hash is then compared in constant time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from amparo.clock import as_utc
from amparo.errors import ConflictError, NotFoundError
from amparo.store.base import Store
from amparo.store.models import Base


class ApiKeyRow(Base):
    """One API key. Revocation is soft so the audit log's ``key:NAME`` actors stay meaningful."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    name: Mapped[str] = mapped_column(String(100), unique=True)
    lookup: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(Text)
    rate_per_second: Mapped[float | None] = mapped_column(Float, nullable=True)
    burst: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


_keys = cast(Table, ApiKeyRow.__table__)


@dataclass(frozen=True)
class StoredKey:
    id: int
    name: str
    lookup: str
    key_hash: str
    scopes: tuple[str, ...]
    rate_per_second: float | None
    burst: int | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def _row(r: Any) -> StoredKey:
    return StoredKey(
        id=int(r.id),
        name=r.name,
        lookup=r.lookup,
        key_hash=r.key_hash,
        scopes=tuple(json.loads(r.scopes)),
        rate_per_second=r.rate_per_second,
        burst=r.burst,
        created_at=as_utc(r.created_at),
        revoked_at=as_utc(r.revoked_at),
    )


class KeyStore:
    """API key rows in the store's database; every change is written to the audit log."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._db = store.db

    def add(
        self,
        *,
        name: str,
        lookup: str,
        key_hash: str,
        scopes: tuple[str, ...],
        rate_per_second: float | None,
        burst: int | None,
        actor: str,
    ) -> StoredKey:
        now = datetime.now(UTC)
        try:
            with self._db.transaction(refresh=False) as tx:
                conn = tx.conn
                conn.execute(
                    insert(_keys).values(
                        name=name,
                        lookup=lookup,
                        key_hash=key_hash,
                        scopes=json.dumps(list(scopes)),
                        rate_per_second=rate_per_second,
                        burst=burst,
                        created_at=now,
                    )
                )
                tx.audit(
                    actor,
                    "key.create",
                    f"key:{name}",
                    {"scopes": list(scopes), "rate_per_second": rate_per_second, "burst": burst},
                )
        except IntegrityError:
            raise ConflictError(
                f"an API key named {name!r} already exists",
                hint="choose another name, or revoke the old key first (names stay taken)",
            ) from None
        return self.get(name)

    def get(self, name: str) -> StoredKey:
        with self._db.reading() as conn:
            row = conn.execute(select(_keys).where(_keys.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no API key named {name!r}", hint="see `amparo keys list`")
        return _row(row)

    def by_lookup(self, lookup: str) -> StoredKey | None:
        with self._db.reading() as conn:
            row = conn.execute(select(_keys).where(_keys.c.lookup == lookup)).first()
        return None if row is None else _row(row)

    def list(self) -> list[StoredKey]:
        with self._db.reading() as conn:
            return [_row(r) for r in conn.execute(select(_keys).order_by(_keys.c.name))]

    def revoke(self, name: str, *, actor: str) -> StoredKey:
        key = self.get(name)
        if key.revoked:
            return key
        with self._db.transaction(refresh=False) as tx:
            conn = tx.conn
            conn.execute(
                update(_keys).where(_keys.c.id == key.id).values(revoked_at=datetime.now(UTC))
            )
            tx.audit(actor, "key.revoke", f"key:{name}", {})
        return self.get(name)
