"""Persistence: SQLAlchemy models, migrations, and the store with its repositories by subject
(``store.banks``, ``store.changes``, ``store.audit_log``; review, evidence, reports, actions and
keys have theirs beside them)."""

from amparo.banks.model import EntryView
from amparo.store.audit_log import AuditEntry
from amparo.store.bank_import import ImportCounts
from amparo.store.base import Store, audit_key_path
from amparo.store.changelog import EntryChanges

__all__ = ["AuditEntry", "EntryChanges", "EntryView", "ImportCounts", "Store", "audit_key_path"]
