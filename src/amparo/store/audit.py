"""The tamper-evident audit log: a hash chain with signed checkpoints.

Every entry carries ``seq`` (1, 2, 3... without gaps), ``prev_hash`` (the hash of entry
``seq - 1``; 64 zeros for the first) and ``hash``, the SHA-256 of the entry's canonical form::

    {"action":..,"actor":..,"at":"2026-01-02T03:04:05.123456+00:00","details":"<stored text>",
     "prev_hash":..,"seq":..,"target":..}

(JSON, keys sorted, no spaces, UTF-8; ``details`` is the JSON *text* exactly as stored). Appends
are serialised by a row lock on the ``audit_seq`` counter taken in the writer's transaction
(on SQLite the database write lock does it), so the chain is linear across processes.

A checkpoint is an Ed25519 signature over ``{"entry_id","hash","at","seq"}`` of one entry: an
attacker who rewrites the database can recompute hashes, but not signatures, and cannot drop
entries from the end past a checkpoint unnoticed. :func:`verify_entries` reports every break
with the entry it concerns and its kind (``edited``, ``removed``, ``reordered``, ``truncated``,
``bad_signature``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, Engine, Table, insert, select, update

from amparo.errors import ConfigError, InputError
from amparo.files import private_dir
from amparo.store.models import AuditRow, CounterRow
from amparo.store.models_reports import AuditCheckpointRow

GENESIS = "0" * 64
"""``prev_hash`` of the first entry."""
COUNTER = "audit_seq"
EXPORT_FORMAT = "amparo-audit"
EXPORT_VERSION = 1

_log = logging.getLogger(__name__)
_audit = cast(Table, AuditRow.__table__)
_counter = cast(Table, CounterRow.__table__)
_checkpoint = cast(Table, AuditCheckpointRow.__table__)


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything Amparo stores is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def timestamp(at: datetime) -> str:
    """The canonical text of a time: ISO 8601, UTC, microseconds."""
    return utc(at).isoformat(timespec="microseconds")


def canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    details: str,
    prev_hash: str,
) -> str:
    """The chain hash of one entry (``details`` is the stored JSON text)."""
    body = {
        "seq": int(seq),
        "at": timestamp(at),
        "actor": actor,
        "action": action,
        "target": target,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical(body)).hexdigest()


def checkpoint_message(seq: int, entry_id: int, chain_hash: str, at: datetime) -> bytes:
    """What a checkpoint signs."""
    return canonical(
        {"seq": int(seq), "entry_id": int(entry_id), "hash": chain_hash, "at": timestamp(at)}
    )


# -- signing keys -------------------------------------------------------------------------


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the raw 32-byte public key: a short name for the key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise InputError(
            f"not a PEM public key: {exc}", hint="use the output of `amparo audit public-key`"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError("the public key is not an Ed25519 key")
    return key


class AuditSigner:
    """The Ed25519 key that signs checkpoints, loaded from (or created at) ``path``."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self._create = create
        self._key: Ed25519PrivateKey | None = None
        self._lock = threading.Lock()

    @property
    def private_key(self) -> Ed25519PrivateKey:
        with self._lock:
            if self._key is None:
                self._key = self._load()
            return self._key

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private_key.sign(message)).decode()

    def _load(self) -> Ed25519PrivateKey:
        if not self.path.exists():
            if not self._create:
                raise ConfigError(
                    f"audit signing key {self.path} does not exist",
                    hint="check audit_signing_key_file, or unset it to use <home>/keys",
                )
            return self._generate()
        try:
            key = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot read the audit signing key {self.path}: {exc}",
                hint="it must be an unencrypted Ed25519 private key in PEM (PKCS#8)",
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"the audit signing key {self.path} is not an Ed25519 key")
        return key

    def _generate(self) -> Ed25519PrivateKey:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        private_dir(self.path.parent)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        try:
            # link, not rename: of two processes creating the key at once, one key wins.
            os.link(tmp, self.path)
        except FileExistsError:
            tmp.unlink()
            return self._load()
        tmp.unlink()
        return key


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ChainConfig:
    """How one engine's chain is checkpointed (see :func:`configure`)."""

    signer: AuditSigner | None = None
    every: int = 0
    seconds: float = 0.0
    clock: Callable[[], datetime] = _utcnow
    last_signed: datetime | None = None
    """When this process last signed a checkpoint (None: not yet)."""
    written: bool = False
    """Entries were appended through this engine since the last checkpoint."""
    timer: threading.Timer | None = None
    """Signs the head once ``seconds`` have passed, if nothing appended since did (a server
    that wrote and then went idle must not leave its tail unsigned until shutdown)."""


_CONFIG: weakref.WeakKeyDictionary[Engine, ChainConfig] = weakref.WeakKeyDictionary()


def configure(
    engine: Engine,
    signer: AuditSigner | None,
    every: int,
    seconds: float = 0.0,
    clock: Callable[[], datetime] | None = None,
) -> None:
    """Sign a checkpoint every ``every`` entries appended through ``engine`` (0: never), and
    at an append when ``seconds`` (0: never) have passed since the last one this process
    signed; :func:`flush` signs the rest (at the end of a command, at shutdown). Without the
    time basis a chain with fewer than ``every`` entries had no signature at all, and its
    tail could be rewritten with recomputed hashes unnoticed (issue #12, point 8)."""
    _CONFIG[engine] = ChainConfig(
        signer, max(0, int(every)), max(0.0, float(seconds)), clock or _utcnow
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
        except Exception as exc:  # a background signer must never take the process down
            _log.warning("could not sign the audit chain's head: %s", exc)

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
    at = datetime.now(UTC)
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
    at = datetime.now(UTC)
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


@dataclass(frozen=True)
class ChainEntry:
    """One audit entry as stored, with its chain fields."""

    id: int
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    details: str
    """The stored JSON text (what the hash covers)."""
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "entry",
            "id": self.id,
            "seq": self.seq,
            "at": timestamp(self.at),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChainEntry:
        return cls(
            id=int(data["id"]),
            seq=int(data["seq"]),
            at=datetime.fromisoformat(str(data["at"])),
            actor=str(data["actor"]),
            action=str(data["action"]),
            target=str(data["target"]),
            details=str(data["details"]),
            prev_hash=str(data["prev_hash"]),
            hash=str(data["hash"]),
        )

    def recompute(self, seq: int | None = None) -> str:
        return entry_hash(
            self.seq if seq is None else seq,
            self.at,
            self.actor,
            self.action,
            self.target,
            self.details,
            self.prev_hash,
        )


@dataclass(frozen=True)
class Checkpoint:
    id: int
    seq: int
    entry_id: int
    hash: str
    at: datetime
    key_id: str
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "checkpoint",
            "id": self.id,
            "seq": self.seq,
            "entry_id": self.entry_id,
            "hash": self.hash,
            "at": timestamp(self.at),
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            id=int(data["id"]),
            seq=int(data["seq"]),
            entry_id=int(data["entry_id"]),
            hash=str(data["hash"]),
            at=datetime.fromisoformat(str(data["at"])),
            key_id=str(data["key_id"]),
            signature=str(data["signature"]),
        )


def _entry(row: Any) -> ChainEntry:
    return ChainEntry(
        id=int(row.id),
        seq=int(row.seq),
        at=utc(row.at),
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
                int(r.id), int(r.seq), int(r.entry_id), r.hash, utc(r.at), r.key_id, r.signature
            )
            for r in rows
        ]


def expected_length(engine: Engine) -> int:
    """How many entries the counter says were appended."""
    with engine.connect() as conn:
        value = conn.execute(select(_counter.c.value).where(_counter.c.name == COUNTER)).scalar()
    return int(value or 0)


# -- verifying ----------------------------------------------------------------------------

PROBLEM_KINDS = ("edited", "removed", "reordered", "truncated", "bad_signature", "malformed")


@dataclass(frozen=True)
class ChainProblem:
    kind: str
    """One of ``PROBLEM_KINDS``."""
    message: str
    seq: int | None = None
    entry_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "entry_id": self.entry_id, "msg": self.message}


@dataclass
class VerifyReport:
    entries: int = 0
    checkpoints: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[ChainProblem] = field(default_factory=list)
    signed_seq: int = 0
    """The highest position a checkpoint vouches for (its hash matches the chain's)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def unsigned(self) -> int:
        """Entries after the last checkpoint: their hashes hold, but nothing signed pins
        them, so whoever can write the database could rewrite or drop them unnoticed."""
        return max(0, self.head_seq - self.signed_seq)

    def summary(self) -> str:
        """One honest line: what a signature covers and what only the hash chain does."""
        if not self.ok:
            return f"{len(self.problems):,} problem(s) in {self.entries:,} entries"
        if self.entries == 0:
            return "empty"
        if self.unsigned == 0:
            return (
                f"intact: {self.entries:,} entries, all covered by "
                f"{self.checkpoints:,} signed checkpoint(s)"
            )
        return (
            f"chain consistent: {self.entries:,} entries, {self.checkpoints:,} signed "
            f"checkpoint(s); the last {self.unsigned:,} entr"
            f"{'y is' if self.unsigned == 1 else 'ies are'} not yet covered by a signature"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "signed_seq": self.signed_seq,
            "unsigned_entries": self.unsigned,
            "problems": [p.to_json() for p in self.problems],
        }


def verify_entries(
    entries: Iterable[ChainEntry],
    checkpoints: Iterable[Checkpoint] = (),
    *,
    public_key: Ed25519PublicKey | None = None,
    expected: int | None = None,
) -> VerifyReport:
    """Check a chain (entries in ``seq`` order): every hash, every link, no gaps, ids rising
    with ``seq``, and every checkpoint's signature and hash. ``expected`` is how many entries
    there should be (the counter), to catch entries removed from the end."""
    report = VerifyReport()
    problems = report.problems
    by_seq: dict[int, tuple[int, str]] = {}
    broken: list[ChainEntry] = []
    prev: ChainEntry | None = None
    prev_ok = True
    for e in entries:
        report.entries += 1
        ok = e.recompute() == e.hash
        if not ok and len(broken) < MAX_BROKEN:
            broken.append(e)
        elif not ok:
            problems.append(_edited(e))
        expected_seq = 1 if prev is None else prev.seq + 1
        if e.seq > expected_seq:
            missing = e.seq - expected_seq
            after = f"after entry {prev.id}" if prev else "at the start"
            problems.append(
                ChainProblem(
                    "removed",
                    f"{missing} entr{'y' if missing == 1 else 'ies'} missing {after}"
                    f" (positions {expected_seq}-{e.seq - 1}), before entry {e.id}",
                    expected_seq,
                    e.id,
                )
            )
        elif prev is not None and ok and prev_ok:
            # Both entries are intact, so a bad link or order is the damage itself.
            if e.seq < expected_seq or e.id <= prev.id:
                problems.append(
                    ChainProblem(
                        "reordered",
                        f"entry {e.id} (position {e.seq}) is out of order after entry {prev.id}",
                        e.seq,
                        e.id,
                    )
                )
            elif e.prev_hash != prev.hash:
                problems.append(
                    ChainProblem(
                        "edited",
                        f"entry {e.id} does not link to entry {prev.id}: entry {prev.id} was "
                        "rewritten with a recomputed hash, or this link was edited",
                        e.seq,
                        e.id,
                    )
                )
        by_seq[e.seq] = (e.id, e.hash)
        prev, prev_ok = e, ok
    # An entry whose hash holds at another broken entry's position was moved, not edited.
    spots = {e.seq for e in broken}
    for e in broken:
        origin = next((s for s in sorted(spots) if s != e.seq and e.recompute(s) == e.hash), None)
        if origin is None:
            problems.append(_edited(e))
        else:
            problems.append(
                ChainProblem(
                    "reordered",
                    f"entry {e.id} was moved: it was written at position {origin}, "
                    f"now stands at {e.seq}",
                    e.seq,
                    e.id,
                )
            )
    if prev is not None:
        report.head_seq, report.head_hash = prev.seq, prev.hash
    top = prev.seq if prev is not None else 0
    if expected is not None and expected > top:
        problems.append(
            ChainProblem(
                "truncated",
                f"{expected - top} entr{'y' if expected - top == 1 else 'ies'} missing from the "
                f"end: the log stops at position {top} but {expected} were written",
                top + 1,
            )
        )
    for cp in checkpoints:
        report.checkpoints += 1
        problem = _check_checkpoint(cp, public_key, by_seq, top)
        if problem is not None:
            problems.append(problem)
        elif cp.seq in by_seq:
            report.signed_seq = max(report.signed_seq, cp.seq)
    problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    return report


MAX_BROKEN = 1000
"""Broken entries examined for having been moved; past this many they are called edited."""


def _edited(e: ChainEntry) -> ChainProblem:
    return ChainProblem(
        "edited",
        f"entry {e.id} (position {e.seq}, {e.action} {e.target}) was changed after it was "
        "written: its content does not match its hash",
        e.seq,
        e.id,
    )


def _check_checkpoint(
    cp: Checkpoint,
    public_key: Ed25519PublicKey | None,
    by_seq: dict[int, tuple[int, str]],
    top: int,
) -> ChainProblem | None:
    if public_key is not None:
        kid = key_id(public_key)
        try:
            if cp.key_id != kid:
                raise InvalidSignature
            public_key.verify(
                base64.b64decode(cp.signature),
                checkpoint_message(cp.seq, cp.entry_id, cp.hash, cp.at),
            )
        except (InvalidSignature, ValueError):
            return ChainProblem(
                "bad_signature",
                f"checkpoint {cp.id} (position {cp.seq}) is not signed by key {kid[:16]}: "
                "forged, edited, or signed by another key",
                cp.seq,
                cp.entry_id,
            )
    held = by_seq.get(cp.seq)
    if held is None:
        if cp.seq > top:
            return ChainProblem(
                "truncated",
                f"checkpoint {cp.id} vouches for position {cp.seq}, but the log ends at "
                f"{top}: entries were removed from the end",
                cp.seq,
                cp.entry_id,
            )
        return None
    if held[1] != cp.hash:
        return ChainProblem(
            "edited",
            f"the chain up to entry {held[0]} (position {cp.seq}) was rewritten: its hash "
            f"differs from the one signed in checkpoint {cp.id}",
            cp.seq,
            held[0],
        )
    return None


def verify_store(engine: Engine, public_key: Ed25519PublicKey | None) -> VerifyReport:
    """Verify the chain held in a database."""
    return verify_entries(
        iter_entries(engine),
        list_checkpoints(engine),
        public_key=public_key,
        expected=expected_length(engine),
    )


# -- export -------------------------------------------------------------------------------


def export_lines(engine: Engine, public_key: Ed25519PublicKey | None) -> Iterator[str]:
    """The chain as JSON Lines: a header, every entry, every checkpoint, the public key."""
    yield _line(
        {
            "kind": "header",
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "exported_at": timestamp(datetime.now(UTC)),
            "entries_written": expected_length(engine),
            "hash": "sha256 of canonical JSON; see docs/audit.md",
        }
    )
    for e in iter_entries(engine):
        yield _line(e.to_json())
    for cp in list_checkpoints(engine):
        yield _line(cp.to_json())
    if public_key is not None:
        yield _line(
            {"kind": "public_key", "key_id": key_id(public_key), "pem": public_key_pem(public_key)}
        )


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n"


def verify_export(lines: Iterable[str], public_key: Ed25519PublicKey | None = None) -> VerifyReport:
    """Verify an export. Its own public key is used unless ``public_key`` is given (a third
    party should compare the key id with one obtained out of band)."""
    entries: list[ChainEntry] = []
    checkpoints: list[Checkpoint] = []
    embedded: Ed25519PublicKey | None = None
    expected: int | None = None
    malformed: list[ChainProblem] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            kind = data.get("kind")
            if kind == "header":
                if data.get("format") != EXPORT_FORMAT:
                    raise ValueError("not an Amparo audit export")
                expected = int(data.get("entries_written") or 0) or None
            elif kind == "entry":
                entries.append(ChainEntry.from_json(data))
            elif kind == "checkpoint":
                checkpoints.append(Checkpoint.from_json(data))
            elif kind == "public_key":
                embedded = load_public_key(str(data["pem"]))
        except (ValueError, KeyError, TypeError, AttributeError, InputError) as exc:
            malformed.append(ChainProblem("malformed", f"line {number}: {exc}"))
    entries.sort(key=lambda e: e.seq)
    report = verify_entries(
        entries, checkpoints, public_key=public_key or embedded, expected=expected
    )
    report.problems[:0] = malformed
    return report
