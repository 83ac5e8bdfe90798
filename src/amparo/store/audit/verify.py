"""Verifying the audit chain: every hash, every link, no gaps, every checkpoint's signature.

:func:`verify_entries` reports every break with the entry it concerns and its kind
(``edited``, ``removed``, ``reordered``, ``truncated``, ``bad_signature``; ``malformed`` for
an export line that cannot be read), and says how much of the chain a signature covers.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine

from amparo.audit_chain import GENESIS, ChainEntry, Checkpoint, checkpoint_message
from amparo.store.audit.chain import expected_length, iter_entries, list_checkpoints
from amparo.store.audit.signing import key_id

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
    checked_key: str | None = None
    """The id of the key the checkpoints' signatures were checked with (None: unchecked)."""

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
    report = VerifyReport(checked_key=key_id(public_key) if public_key is not None else None)
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
