"""Routes of the reviewer web UI at ``/review``: sign-in (:mod:`~amparo.web.signin`), the
queue, case pages, decisions and the curators' entries page (:mod:`~amparo.web.cases`),
shielded media and reveals (:mod:`~amparo.web.media`); the curator console at ``/console``
(:mod:`~amparo.web.console`, :mod:`~amparo.web.console_rules`,
:mod:`~amparo.web.console_webhooks`); over what every page shares
(:mod:`~amparo.web.pages`: templates, sessions, CSRF checks, static files).

A thin shell over ``amparo.cases`` (``review.CaseService``) and ``review.sessions``. Every
response under ``/review``, error responses of the app's handlers included, carries
``SECURITY_HEADERS`` (added by the service middleware); every POST must carry the session's
CSRF token and come from this origin; media responses are never cached.
"""

from __future__ import annotations

from fastapi import APIRouter

from amparo.web import (
    cases,
    console,
    console_rules,
    console_webhooks,
    hotline,
    hotline_stats,
    media,
    pages,
    report,
    signin,
)
from amparo.web.pages import SECURITY_HEADERS

__all__ = ["SECURITY_HEADERS", "router"]

router = APIRouter(include_in_schema=False)
for part in (signin, cases, media, hotline, hotline_stats, pages):
    router.include_router(part.router, prefix="/review")
# The curator console: its own session cookie (path /console), the same checks and headers.
for part in (console, console_rules, console_webhooks):
    router.include_router(part.router, prefix=console.PREFIX)
# The public report page: no account, its own CSRF cookie (see amparo.web.report).
router.include_router(report.router)
