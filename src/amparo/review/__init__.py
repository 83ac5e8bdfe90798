"""Cases, review decisions and wellness safeguards (owned by the review work; see ``cases``).

Contract other layers rely on::

    cases = amparo.cases                       # CaseService
    case_id = cases.open_or_extend(content, evidence_id=..., rule=..., actor=...)
    view = cases.get(case_id)                  # CaseView: items, matches, decision

``CaseService`` is imported on first use: the storage repositories import
:mod:`amparo.review.model`, which must not pull the service (and them) back in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amparo.review.cases import CaseService

__all__ = ["CaseService"]


def __getattr__(name: str) -> Any:
    if name == "CaseService":
        from amparo.review.cases import CaseService

        return CaseService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
