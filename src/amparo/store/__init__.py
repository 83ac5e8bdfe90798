"""Persistence: SQLAlchemy models, migrations and the Store repository."""

from amparo.store.repository import AuditEntry, EntryChanges, EntryView, ImportCounts, Store

__all__ = ["AuditEntry", "EntryChanges", "EntryView", "ImportCounts", "Store"]
