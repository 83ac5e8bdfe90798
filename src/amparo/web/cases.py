"""The review queue, case pages, decisions and their undo, and the curators' page of bank
entries disabled after false positives: a thin shell over ``amparo.cases``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from amparo.errors import AmparoError, InputError, NotFoundError
from amparo.review.cases import CLASSIFICATIONS, QUEUE_STATUSES, CaseService, CaseView
from amparo.web.pages import (
    Id,
    ItemQuery,
    cases_of,
    checked_post,
    curator_of,
    error_page,
    page,
    redirect,
    reviewer_of,
    service_of,
)

router = APIRouter()


@router.get("/queue")
async def queue(request: Request, status: str = "waiting") -> Response:
    session = await reviewer_of(request)
    if isinstance(session, Response):
        return session
    if status not in QUEUE_STATUSES:
        status = "waiting"
    cases = await run_in_threadpool(cases_of(request).queue, status, limit=200)
    return page(
        request,
        "queue.html",
        {"cases": cases, "status": status, "statuses": list(QUEUE_STATUSES)},
        session=session,
    )


def _next_case(cases: CaseService, after: int) -> int | None:
    for case in cases.queue("waiting", limit=20):
        if case.id != after:
            return case.id
    return None


@router.get("/cases/{case_id}")
async def case_page(request: Request, case_id: Id, item: ItemQuery = None) -> Response:
    session = await reviewer_of(request)
    if isinstance(session, Response):
        return session
    cases = cases_of(request)
    try:
        case: CaseView = await run_in_threadpool(cases.get, case_id)
    except NotFoundError as exc:
        return error_page(request, exc, session)
    if not case.items:
        return error_page(request, NotFoundError(f"case {case_id} has no items"), session)
    ids = [i.id for i in case.items]
    chosen = (
        item if item in ids else next((i.id for i in case.items if i.status != "decided"), ids[0])
    )
    index = ids.index(chosen)
    current = case.items[index]
    next_case = await run_in_threadpool(_next_case, cases, case_id)
    history = await run_in_threadpool(cases.history, current.id)
    prev_url = f"/review/cases/{case_id}?item={ids[index - 1]}" if index > 0 else None
    if index + 1 < len(ids):
        next_url: str | None = f"/review/cases/{case_id}?item={ids[index + 1]}"
    else:
        next_url = f"/review/cases/{next_case}" if next_case else None
    return page(
        request,
        "case.html",
        {
            "case": case,
            "item": current,
            "history": history,
            "classifications": CLASSIFICATIONS,
            "prev_url": prev_url,
            "next_url": next_url,
            "reveal_seconds": service_of(request).settings.review_reveal_seconds,
        },
        session=session,
    )


@router.post("/items/{item_id}/decision")
async def decision(request: Request, item_id: Id) -> Response:
    session = await reviewer_of(request)
    if isinstance(session, Response):
        return session
    cases = cases_of(request)
    try:
        fields = await checked_post(request, session)
        choice = fields.get("choice", "")
        kind, _, classification = choice.partition(":")
        annotations = [a for a in fields.get("annotations", "").split(",") if a.strip()]
        if not kind:
            raise InputError("choose a decision", hint="see the shortcuts: 1-4, f, e")
        if kind == "false_positive" and fields.get("confirmed") != "yes":
            # Destructive (it counts against the bank entries, and the preserved copy goes
            # after the undo grace): one keystroke only asks; a second step confirms. A plain
            # form, so it works without JavaScript too.
            item = await run_in_threadpool(cases.item, item_id)
            return page(
                request,
                "confirm.html",
                {
                    "item": item,
                    "annotations": fields.get("annotations", ""),
                    "note": fields.get("note", ""),
                    "undo_minutes": _minutes(service_of(request).settings.review_undo_seconds),
                },
                session=session,
            )
        await run_in_threadpool(
            lambda: cases.decide(
                item_id,
                kind,
                classification=classification or None,
                annotations=annotations,
                note=fields.get("note"),
                reviewer=session.key_name,
                actor=session.actor,
            )
        )
        case = await run_in_threadpool(lambda: cases.get(cases.item(item_id).case_id))
    except AmparoError as exc:
        return error_page(request, exc, session)
    # The next page offers to undo this decision for review_undo_seconds.
    decided = f"decided={item_id}"
    if case.status == "open":
        return redirect(f"/review/cases/{case.id}?{decided}")
    following = await run_in_threadpool(_next_case, cases, case.id)
    return redirect(
        f"/review/cases/{following}?{decided}" if following else f"/review/queue?{decided}"
    )


@router.post("/items/{item_id}/undo")
async def undo(request: Request, item_id: Id) -> Response:
    session = await reviewer_of(request)
    if isinstance(session, Response):
        return session
    cases = cases_of(request)
    try:
        await checked_post(request, session)
        await run_in_threadpool(
            lambda: cases.undo(item_id, reviewer=session.key_name, actor=session.actor)
        )
        case_id = (await run_in_threadpool(cases.item, item_id)).case_id
    except AmparoError as exc:
        return error_page(request, exc, session)
    return redirect(f"/review/cases/{case_id}?item={item_id}")


def _minutes(seconds: int) -> str:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"


# -- curators ---------------------------------------------------------------------------------


@router.get("/entries")
async def entries_page(request: Request) -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    entries = await run_in_threadpool(cases_of(request).disabled_entries)
    return page(request, "entries.html", {"entries": entries}, session=session)


@router.post("/entries/{entry_id}/enable")
async def reenable(request: Request, entry_id: Id) -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    try:
        await checked_post(request, session)
        await run_in_threadpool(
            lambda: cases_of(request).reenable_entry(entry_id, actor=session.actor)
        )
    except AmparoError as exc:
        return error_page(request, exc, session)
    return redirect("/review/entries")
