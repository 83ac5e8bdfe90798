"""The canonical text of audit entries and checkpoints, and the hashes computed over it.

Pure (no store): the audit log (:mod:`amparo.store.audit`) and a recipient checking a report
package's custody log (:mod:`amparo.reports.package_verify`) compute the same hashes here.

These bytes are what every stored ``hash`` and every checkpoint signature covers: changing
any of them (key order, separators, the time's text) would call every existing chain
tampered. Entries and checkpoints are also the records an export carries (``to_json``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from amparo.clock import as_utc

GENESIS = "0" * 64
"""``prev_hash`` of the first entry."""


def timestamp(at: datetime) -> str:
    """The canonical text of a time: ISO 8601, UTC, microseconds."""
    return as_utc(at).isoformat(timespec="microseconds")


def canonical(obj: dict[str, Any]) -> bytes:
    """JSON, keys sorted, no spaces, UTF-8."""
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
    return line_hash(seq, timestamp(at), actor, action, target, details, prev_hash)


def line_hash(
    seq: int,
    at: str,
    actor: str,
    action: str,
    target: str,
    details: str,
    prev_hash: str,
) -> str:
    """:func:`entry_hash` of an entry whose time is already its canonical text (a line of an
    export or of a report package's ``custody.jsonl``, checked without a database)."""
    body = {
        "seq": int(seq),
        "at": at,
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
    """A signature over one entry's position, id and hash: the chain up to it is pinned."""

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
