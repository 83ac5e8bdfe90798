"""Reports to hotlines and police from confirmed cases.

Contract::

    draft_id = amparo.reports.queue_draft(case_id, rule=..., actor=...)
    record = amparo.reports.build(draft_id, actor=...)       # refuses unconfirmed cases
    amparo.reports.submit(draft_id, actor=...)               # CyberTipline; resumable
    amparo.reports.package(draft_id, Path("out.zip"), actor=...)

See docs/reports.md.
"""

from amparo.reports.service import ReportService

__all__ = ["ReportService"]
