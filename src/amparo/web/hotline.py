"""The analysts' pages of the hotline at ``/review/hotline``: the queue of unknown items, an
item's page (its medium shielded, its URLs as text, its hashes) and the assessment form.

A thin shell over :class:`amparo.hotline.assessment.Assessments`, with the reviewer pages'
safeguards (:mod:`amparo.web.pages`: sign-in, the reviewer scope, CSRF and origin checks,
security headers). Media is sent shielded (greyscale, blurred) unless the analyst reveals it
for a few seconds; reveals are logged and counted with case reveals against the daily limit.
Text comes from the ``review`` gettext domain in the language negotiated from ``?lang``, the
``amparo_lang`` cookie or ``Accept-Language``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from amparo.errors import AmparoError
from amparo.hotline.assessment import Assessments
from amparo.hotline.jurisdictions import jurisdictions
from amparo.hotline.model import ASSESSMENTS, HotlineItem
from amparo.hotline.service import HotlineService
from amparo.i18n import translator
from amparo.review.model import CLASSIFICATIONS
from amparo.web.media import media_response, reveal_response
from amparo.web.pages import (
    Id,
    checked_post,
    error_page,
    language_of,
    page,
    redirect,
    remember_language,
    reviewer_of,
    service_of,
)

router = APIRouter()

QUEUE_LIMIT = 200


def hotline_of(request: Request) -> HotlineService:
    hotline: HotlineService = service_of(request).amparo.hotline
    return hotline


def assessments_of(request: Request) -> Assessments:
    return hotline_of(request).assessments


def _outgoing_banks(request: Request) -> list[str]:
    """Banks a proposal may go to: positive ones (a curator's approval publishes into it)."""
    banks = service_of(request).amparo.banks.list(with_counts=False)
    return [b.name for b in banks if b.kind != "negative"]


def _age(item: HotlineItem, now: datetime) -> str:
    seconds = max(0, int((now - item.first_seen).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _texts(lang: str) -> dict[str, Any]:
    _ = translator(lang, "review")
    return {
        "_": _,
        "lang": lang,
        "assessment_names": {
            "baseline": _("Baseline (illegal internationally)"),
            "national": _("National (illegal under a jurisdiction's law)"),
            "not_illegal": _("Not illegal"),
        },
        "status_names": {
            "unknown": _("waiting for an analyst"),
            "assessed": _("assessed"),
            "verified": _("verified (matched a bank)"),
        },
    }


@router.get("/hotline")
async def queue(request: Request, offset: int = 0) -> Response:
    session = await reviewer_of(request)
    if isinstance(session, Response):
        return session
    lang = language_of(request)
    assessments = assessments_of(request)
    offset = max(0, min(offset, 10**9))
    items = await run_in_threadpool(assessments.waiting, limit=QUEUE_LIMIT, offset=offset)
    total = await run_in_threadpool(assessments.count_waiting)
    now = hotline_of(request).context.clock()
    response = page(
        request,
        "hotline_queue.html",
        {
            **_texts(lang),
            "items": [(item, _age(item, now)) for item in items],
            "total": total,
            "offset": offset,
            "next_offset": offset + QUEUE_LIMIT if offset + QUEUE_LIMIT < total else None,
        },
        session=session,
    )
    return remember_language(request, response, lang)


@router.get("/hotline/items/{item_id}")
async def item_page(request: Request, item_id: Id) -> Response:
    session = await reviewer_of(request)
    if isinstance(session, Response):
        return session
    lang = language_of(request)
    hotline = hotline_of(request)
    try:
        item = await run_in_threadpool(hotline.records.item, item_id)
        report = await run_in_threadpool(hotline.records.get, item.report_id)
        known = await run_in_threadpool(jurisdictions, hotline.settings)
    except AmparoError as exc:
        return error_page(request, exc, session)
    choices = sorted(
        ((code, j.name(lang), j.legal_basis) for code, j in known.items()),
        key=lambda c: c[1].casefold(),
    )
    response = page(
        request,
        "hotline_item.html",
        {
            **_texts(lang),
            "item": item,
            "report": report,
            "age": _age(item, hotline.context.clock()),
            "assessments": ASSESSMENTS,
            "jurisdictions": choices,
            "jurisdiction": known.get(item.jurisdiction or ""),
            "reveal_seconds": hotline.settings.review_reveal_seconds,
            "outgoing_banks": await run_in_threadpool(_outgoing_banks, request),
            "classifications": CLASSIFICATIONS,
        },
        session=session,
    )
    return remember_language(request, response, lang)


@router.get("/hotline/items/{item_id}/media")
async def item_media(request: Request, item_id: Id, clear: int = 0) -> Response:
    return await media_response(
        request,
        lambda session: assessments_of(request).media(
            item_id, session.key_name, clear=bool(clear), actor=session.actor
        ),
    )


@router.post("/hotline/items/{item_id}/reveal")
async def reveal(request: Request, item_id: Id) -> Response:
    """A deliberate, logged look at the clear media for a few seconds (the page's script
    asks; the answer says what the exposure count is now), as on case pages."""
    return await reveal_response(
        request,
        f"/review/hotline/items/{item_id}/media?clear=1",
        lambda session: assessments_of(request).reveal(
            item_id, session.key_name, actor=session.actor
        ),
    )


@router.post("/hotline/items/{item_id}/assess")
async def assess(request: Request, item_id: Id) -> Response:
    session = await reviewer_of(request)
    if isinstance(session, Response):
        return session
    assessments = assessments_of(request)
    try:
        fields = await checked_post(request, session)
        choice = fields.get("assessment", "")
        await run_in_threadpool(
            lambda: assessments.assess(
                item_id,
                choice,
                actor=session.actor,
                jurisdiction=fields.get("jurisdiction") if choice == "national" else None,
                note=fields.get("note"),
            )
        )
        following = await run_in_threadpool(assessments.waiting, limit=1)
    except AmparoError as exc:
        return error_page(request, exc, session)
    if following:
        return redirect(f"/review/hotline/items/{following[0].id}?assessed={item_id}")
    return redirect(f"/review/hotline?assessed={item_id}")


@router.post("/hotline/items/{item_id}/propose")
async def propose(request: Request, item_id: Id) -> Response:
    """Propose an item assessed illegal to an outgoing bank (the share-back path: a curator
    approves before anything is published)."""
    session = await reviewer_of(request)
    if isinstance(session, Response):
        return session
    assessments = assessments_of(request)
    try:
        fields = await checked_post(request, session)
        proposal = await run_in_threadpool(
            lambda: assessments.propose(
                item_id,
                fields.get("bank", ""),
                actor=session.actor,
                note=fields.get("note") or None,
                classification=fields.get("classification"),
            )
        )
    except AmparoError as exc:
        return error_page(request, exc, session)
    return redirect(f"/review/hotline/items/{item_id}?proposed={proposal.id}")
