"""The audit chain in the database: appending, the chain's lock, signed checkpoints, reading.

Every entry carries ``seq`` (1, 2, 3... without gaps), ``prev_hash`` (the hash of entry
``seq - 1``; 64 zeros for the first) and ``hash``, the SHA-256 of the entry's canonical form::

    {"action":..,"actor":..,"at":"2026-01-02T03:04:05.123456+00:00","details":"<stored text>",
     "prev_hash":..,"seq":..,"target":..}

(JSON, keys sorted, no spaces, UTF-8; ``details`` is the JSON *text* exactly as stored; see
:mod:`amparo.audit_chain`). Appends are serialised by a row lock on the
``audit_seq`` counter taken in the writer's transaction (on SQLite the database write lock
does it), so the chain is linear across processes.

A checkpoint is an Ed25519 signature over ``{"entry_id","hash","at","seq"}`` of one entry,
signed every ``every`` appends, after ``seconds`` and at :func:`flush` (see :func:`configure`).
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, insert, select, update
from sqlalchemy.exc import OperationalError

from amparo.audit_chain import (
    GENESIS,
    ChainEntry,
    Checkpoint,
    checkpoint_message,
    entry_hash,
)
from amparo.clock import Clock, as_utc, utc_now
from amparo.store.audit.signing import AuditSigner, key_id
from amparo.store.models import AuditRow, CounterRow
from amparo.store.models_reports import AuditCheckpointRow

COUNTER = "audit_seq"

_log = logging.getLogger(__name__)
_audit = cast(Table, AuditRow.__table__)
_counter = cast(Table, CounterRow.__table__)
_checkpoint = cast(Table, AuditCheckpointRow.__table__)


# -- checkpoint policy --------------------------------------------------------------------


@dataclass
class ChainConfig:
    """How one engine's chain is checkpointed (see :func:`configure`)."""

    signer: AuditSigner | None = None
    every: int = 0
    seconds: float = 0.0
    clock: Clock = utc_now
    last_signed: datetime | None = None
    """When this process last signed a checkpoint (None: not yet)."""
    written: bool = False
    """Entries were appended through this engine since the last checkpoint."""
    timer: threading.Timer | None = None
    """Signs the head once ``seconds`` have passed, if nothing appended since did (a server
    that wrote and then went idle must not leave its tail unsigned until shutdown)."""


_BUSY_RETRY_SECONDS = 5.0
"""When the background signer found the database busy and no signing interval is set."""
_CONFIG: weakref.WeakKeyDictionary[Engine, ChainConfig] = weakref.WeakKeyDictionary()


def configure(
    engine: Engine,
    signer: AuditSigner | None,
    every: int,
    seconds: float = 0.0,
    clock: Clock | None = None,
) -> None:
    """Sign a checkpoint every ``every`` entries appended through ``engine`` (0: never), and
    at an append when ``seconds`` (0: never) have passed since the last one this process
    signed; :func:`flush` signs the rest (at the end of a command, at shutdown). Without the
    time basis a chain with fewer than ``every`` entries had no signature at all, and its
    tail could be rewritten with recomputed hashes unnoticed (issue #12, point 8)."""
    _CONFIG[engine] = ChainConfig(
        signer, max(0, int(every)), max(0.0, float(seconds)), clock or utc_now
    )


def flush(engine: Engine) -> Checkpoint | None:
    """Sign the head if entries were appended through ``engine`` since the last checkpoint
    (called at the end of each CLI command, at ``serve`` shutdown and at close)."""
    config = _CONFIG.get(engine)
    if config is None:
        return None
    if config.timer is not None:
        config.timer.cancel()
        config.timer = None
    if config.signer is None or not config.written:
        return None
    cp = checkpoint(engine, config.signer)
    config.written, config.last_signed = False, config.clock()
    return cp


def _flush_later(engine: Engine, config: ChainConfig, delay: float) -> None:
    if config.timer is not None:
        return

    def run() -> None:
        config.timer = None
        try:
            flush(engine)
        except OperationalError as exc:
            # A long write holds the database (an import's part): sign once it is done.
            _log.debug("audit chain head not signed yet (database busy): %s", exc.orig)
            _flush_later(engine, config, config.seconds or _BUSY_RETRY_SECONDS)
        except Exception as exc:  # a background signer must never take the process down
            first = str(exc).strip().splitlines()[:1]
            _log.warning("could not sign the audit chain's head: %s", *(first or ["?"]))

    timer = threading.Timer(max(0.0, delay), run)
    timer.daemon = True
    config.timer = timer
    timer.start()


def signer_for(engine: Engine) -> AuditSigner | None:
    config = _CONFIG.get(engine)
    return config.signer if config else None


# -- appending ----------------------------------------------------------------------------


def append(conn: Connection, actor: str, action: str, target: str, details: dict[str, Any]) -> int:
    """Append one entry inside ``conn``'s transaction; returns its ``seq``."""
    seq = _reserve(conn)
    prev = (
        GENESIS
        if seq == 1
        else conn.execute(select(_audit.c.hash).where(_audit.c.seq == seq - 1)).scalar()
    )
    if prev is None:
        # The previous entry is gone (deleted by hand): chain on regardless; verify says where.
        prev = GENESIS
    at = utc_now()
    text = json.dumps(details, default=str)
    digest = entry_hash(seq, at, actor, action, target, text, prev)
    entry_id = conn.execute(
        insert(_audit)
        .values(
            at=at,
            actor=actor,
            action=action,
            target=target,
            details=text,
            seq=seq,
            prev_hash=prev,
            hash=digest,
        )
        .returning(_audit.c.id)
    ).scalar_one()
    config = _CONFIG.get(conn.engine)
    if config is not None and config.signer is not None:
        now = config.clock()
        due_by_count = bool(config.every) and seq % config.every == 0
        due_by_time = bool(config.seconds) and (
            config.last_signed is None
            or (now - config.last_signed).total_seconds() >= config.seconds
        )
        if due_by_count or due_by_time:
            _insert_checkpoint(conn, config.signer, seq, int(entry_id), digest)
            config.last_signed, config.written = now, False
        else:
            config.written = True
            if config.seconds and config.last_signed is not None:
                elapsed = (now - config.last_signed).total_seconds()
                _flush_later(conn.engine, config, config.seconds - elapsed)
    return seq


def hold(conn: Connection) -> None:
    """Take the audit chain's lock now; it is held until ``conn``'s transaction ends.

    Every writer that audits takes it anyway (appends are serialised); taking it first
    makes a transaction's reads and writes one step against other such writers, so a check
    such as "is this content already in an open case?" cannot be raced by another process.
    (On SQLite the write also takes the database's write lock before the reads.)
    """
    conn.execute(update(_counter).where(_counter.c.name == COUNTER).values(value=_counter.c.value))


def _reserve(conn: Connection) -> int:
    """The next position, under the counter's row lock (held until the transaction ends)."""
    bumped = conn.execute(
        update(_counter).where(_counter.c.name == COUNTER).values(value=_counter.c.value + 1)
    )
    if not bumped.rowcount:
        # Migration 0007 creates the counter; this covers a database built another way.
        top = conn.execute(select(_audit.c.seq).order_by(_audit.c.seq.desc()).limit(1)).scalar()
        conn.execute(insert(_counter).values(name=COUNTER, value=int(top or 0) + 1))
    return int(
        conn.execute(select(_counter.c.value).where(_counter.c.name == COUNTER)).scalar_one()
    )


def _insert_checkpoint(
    conn: Connection, signer: AuditSigner, seq: int, entry_id: int, chain_hash: str
) -> Checkpoint:
    at = utc_now()
    signature = signer.sign(checkpoint_message(seq, entry_id, chain_hash, at))
    kid = key_id(signer.public_key)
    cid = conn.execute(
        insert(_checkpoint)
        .values(seq=seq, entry_id=entry_id, hash=chain_hash, at=at, key_id=kid, signature=signature)
        .returning(_checkpoint.c.id)
    ).scalar_one()
    return Checkpoint(int(cid), seq, entry_id, chain_hash, at, kid, signature)


def checkpoint(engine: Engine, signer: AuditSigner) -> Checkpoint | None:
    """Sign a checkpoint of the chain's head now; None when the log is empty."""
    with engine.begin() as conn:
        hold(conn)  # the head cannot move while it is signed
        head = conn.execute(
            select(_audit.c.seq, _audit.c.id, _audit.c.hash).order_by(_audit.c.seq.desc()).limit(1)
        ).first()
        if head is None:
            return None
        return _insert_checkpoint(conn, signer, int(head.seq), int(head.id), head.hash)


# -- reading ------------------------------------------------------------------------------


def _entry(row: Any) -> ChainEntry:
    return ChainEntry(
        id=int(row.id),
        seq=int(row.seq),
        at=as_utc(row.at),
        actor=row.actor,
        action=row.action,
        target=row.target,
        details=row.details,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def iter_entries(
    engine: Engine, *, targets: Iterable[str] | None = None, batch: int = 5000
) -> Iterator[ChainEntry]:
    """Entries in chain order (by ``seq``), optionally only those about ``targets``."""
    wanted = sorted(set(targets)) if targets is not None else None
    last = 0
    with engine.connect() as conn:
        while True:
            query = select(_audit).where(_audit.c.seq > last).order_by(_audit.c.seq).limit(batch)
            if wanted is not None:
                query = query.where(_audit.c.target.in_(wanted))
            rows = conn.execute(query).all()
            if not rows:
                return
            last = int(rows[-1].seq)
            yield from (_entry(r) for r in rows)


def list_checkpoints(engine: Engine) -> list[Checkpoint]:
    with engine.connect() as conn:
        rows = conn.execute(select(_checkpoint).order_by(_checkpoint.c.seq, _checkpoint.c.id))
        return [
            Checkpoint(
                int(r.id), int(r.seq), int(r.entry_id), r.hash, as_utc(r.at), r.key_id, r.signature
            )
            for r in rows
        ]


def expected_length(engine: Engine) -> int:
    """How many entries the counter says were appended."""
    with engine.connect() as conn:
        value = conn.execute(select(_counter.c.value).where(_counter.c.name == COUNTER)).scalar()
    return int(value or 0)
