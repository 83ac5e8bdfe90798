"""Cases, review decisions and wellness safeguards (owned by the review work; see ``cases``).

Contract other layers rely on::

    cases = amparo.cases                       # CaseService
    case_id = cases.open_or_extend(content, evidence_id=..., rule=..., actor=...)
    view = cases.get(case_id)                  # CaseView: items, matches, decision
"""

from amparo.review.cases import CaseService

__all__ = ["CaseService"]
