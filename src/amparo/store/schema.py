"""The whole schema: every table module, so ``Base.metadata`` is complete (Alembic's
environment and the models-match-migrations test import this)."""

from amparo.store import (
    keys,
    models,
    models_actions,
    models_evidence,
    models_reports,
    models_review,
)
from amparo.store.models import Base

__all__ = [
    "Base",
    "keys",
    "models",
    "models_actions",
    "models_evidence",
    "models_reports",
    "models_review",
]
