"""Storage of the review work, one repository per subject: cases and items (``cases``),
decisions and undo (``decisions``), false positives counted against bank entries
(``false_positives``), reveals and sign-ins (``exposure``). The tables are in
``amparo.store.models_review``; the rows map to the types of :mod:`amparo.review.model` in
``rows``, once. ``amparo.review`` holds the rules; this package the SQL.

Every change records its audit entry in the same transaction; a repository's transaction
joins one the caller has open (see :mod:`amparo.store.uow`). Nothing here stores media.
"""

from amparo.store.review.cases import CaseRepository
from amparo.store.review.decisions import DecisionRepository
from amparo.store.review.exposure import RevealRepository, SignInRepository
from amparo.store.review.false_positives import FalsePositiveRepository

__all__ = [
    "CaseRepository",
    "DecisionRepository",
    "FalsePositiveRepository",
    "RevealRepository",
    "SignInRepository",
]
