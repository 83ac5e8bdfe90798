"""The whole schema: every table module, so ``Base.metadata`` is complete (Alembic's
environment and the models-match-migrations test import this)."""

from amparo.store import (
    keys,
    models,
    models_actions,
    models_evidence,
    models_exchanges,
    models_feeds,
    models_hotline,
    models_reports,
    models_retro,
    models_review,
)
from amparo.store.models import Base

# SQLite reuses the id of a deleted row unless the table says AUTOINCREMENT; every table whose
# integer id other rows, the audit log or reports refer to must never hand one out twice
# (migration 0008 rebuilt them; PostgreSQL sequences never reuse ids).
for _table in Base.metadata.tables.values():
    _pk = list(_table.primary_key.columns)
    if len(_pk) == 1 and _pk[0].name == "id":
        _table.dialect_options["sqlite"]["autoincrement"] = True

__all__ = [
    "Base",
    "keys",
    "models",
    "models_actions",
    "models_evidence",
    "models_exchanges",
    "models_feeds",
    "models_hotline",
    "models_reports",
    "models_retro",
    "models_review",
]
