"""Placeholder: filled by the part's owner (see amparo.hotline.service)."""

from __future__ import annotations

from amparo.hotline.context import HotlineContext
from amparo.hotline.model import Attribution, UrlReport


class Attributor:
    def __init__(self, ctx: HotlineContext) -> None:
        self.ctx = ctx

    def attribute(self, host: str) -> Attribution:
        """Where ``host`` is hosted: addresses, ASN, provider, country (.mmdb), abuse contact
        (overrides, then RDAP, cached), CDN flag."""
        raise NotImplementedError

    def attribute_report(self, report_id: int) -> UrlReport:
        """Attribute a report's host and store the answer on the report."""
        raise NotImplementedError
