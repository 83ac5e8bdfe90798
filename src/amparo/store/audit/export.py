"""The audit chain as JSON Lines, for anyone to verify offline (``amparo audit export``).

A header, every entry, every checkpoint, then the public key; :func:`verify_export` checks
such a file with its own key or, better, one obtained out of band.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine

from amparo.audit_chain import ChainEntry, Checkpoint, timestamp
from amparo.clock import utc_now
from amparo.errors import InputError
from amparo.store.audit.chain import expected_length, iter_entries, list_checkpoints
from amparo.store.audit.signing import key_id, load_public_key, public_key_pem
from amparo.store.audit.verify import ChainProblem, VerifyReport, verify_entries

EXPORT_FORMAT = "amparo-audit"
EXPORT_VERSION = 1


def export_lines(engine: Engine, public_key: Ed25519PublicKey | None) -> Iterator[str]:
    """The chain as JSON Lines: a header, every entry, every checkpoint, the public key."""
    yield _line(
        {
            "kind": "header",
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "exported_at": timestamp(utc_now()),
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
