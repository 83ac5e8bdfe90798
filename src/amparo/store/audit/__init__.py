"""The tamper-evident audit log: a hash chain with signed checkpoints.

By subject: :mod:`~amparo.audit_chain` (the canonical text and hashes of entries
and checkpoints), :mod:`~amparo.store.audit.signing` (the Ed25519 key),
:mod:`~amparo.store.audit.chain` (appending, the chain's lock, the checkpoint policy,
reading), :mod:`~amparo.store.audit.verify` (finding every break),
:mod:`~amparo.store.audit.export` (JSON Lines for offline verification) and
:mod:`~amparo.store.audit.repository` (:class:`AuditChain`, what services outside ``store/``
are given). The names the rest of Amparo uses are re-exported here.
"""

from amparo.audit_chain import (
    GENESIS,
    ChainEntry,
    Checkpoint,
    canonical,
    checkpoint_message,
    entry_hash,
    timestamp,
)
from amparo.store.audit.chain import (
    COUNTER,
    ChainConfig,
    append,
    checkpoint,
    configure,
    expected_length,
    flush,
    hold,
    iter_entries,
    list_checkpoints,
    signer_for,
)
from amparo.store.audit.export import EXPORT_FORMAT, EXPORT_VERSION, export_lines, verify_export
from amparo.store.audit.repository import AuditChain
from amparo.store.audit.signing import AuditSigner, key_id, load_public_key, public_key_pem
from amparo.store.audit.verify import (
    MAX_BROKEN,
    PROBLEM_KINDS,
    ChainProblem,
    VerifyReport,
    verify_entries,
    verify_store,
)

__all__ = [
    "COUNTER",
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "GENESIS",
    "MAX_BROKEN",
    "PROBLEM_KINDS",
    "AuditChain",
    "AuditSigner",
    "ChainConfig",
    "ChainEntry",
    "ChainProblem",
    "Checkpoint",
    "VerifyReport",
    "append",
    "canonical",
    "checkpoint",
    "checkpoint_message",
    "configure",
    "entry_hash",
    "expected_length",
    "export_lines",
    "flush",
    "hold",
    "iter_entries",
    "key_id",
    "list_checkpoints",
    "load_public_key",
    "public_key_pem",
    "signer_for",
    "timestamp",
    "verify_entries",
    "verify_export",
    "verify_store",
]
