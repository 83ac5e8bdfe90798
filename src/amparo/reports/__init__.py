"""Reports to hotlines and police from confirmed cases (owned by the reports work).

Contract::

    draft_id = amparo.reports.queue_draft(case_id, rule=..., actor=...)
"""

from amparo.reports.service import ReportService

__all__ = ["ReportService"]
