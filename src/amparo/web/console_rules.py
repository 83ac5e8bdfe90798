"""The curator console's action rules (``/console/rules``): list, create, edit (a new
version), try on a described match, disable and enable, each with its versions and audit
trail. A thin shell over ``Actioner`` and :class:`amparo.curation.CurationService`; plain
forms, no JavaScript. Webhook endpoints are in :mod:`amparo.web.console_webhooks`.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from amparo.actions import Rule
from amparo.actions.rules import ACTION_TYPES, MAX_PRIORITY
from amparo.curation import SampleMatch
from amparo.errors import AmparoError, InputError
from amparo.events import SOURCE_KINDS
from amparo.matching import PATHS
from amparo.names import validate_name
from amparo.review.sessions import WebSession
from amparo.web.console import (
    PREFIX,
    console_error,
    console_page,
    curation_of,
    curator_of,
)
from amparo.web.pages import checked_post, redirect, service_of

router = APIRouter()
NAME_MAX = 100


def _names(text: str) -> list[str] | None:
    """A comma-separated list of names; None (no condition) when empty."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    return names or None


def _whole(text: str, what: str, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise InputError(f"{what} must be a whole number, not {text[:40]!r}") from None
    if not low <= value <= high:
        raise InputError(f"{what} must be from {low:,} to {high:,}")
    return value


def _actions(text: str) -> list[dict[str, str]]:
    """``review, webhook:platform, quarantine:move, report`` -> the rule's actions."""
    out: list[dict[str, str]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        kind, _, arg = part.partition(":")
        kind = kind.strip()
        if kind == "webhook":
            out.append({"type": "webhook", "endpoint": arg.strip()})
        elif kind == "quarantine" and arg.strip():
            out.append({"type": "quarantine", "mode": arg.strip()})
        else:
            if arg:
                raise InputError(f"action {kind!r} takes no ':{arg}'")
            out.append({"type": kind})
    return out


def rule_of_form(fields: dict[str, str], source_kinds: list[str], name: str) -> Rule:
    """A rule from the console's form (validated by ``Rule.from_json``)."""
    conditions: dict[str, Any] = {
        "banks": _names(fields.get("banks", "")),
        "categories": _names(fields.get("categories", "")),
        "signal_types": _names(fields.get("signal_types", "")),
        "source_kinds": source_kinds or None,
        "paths": _names(fields.get("paths", "")),
    }
    if fields.get("max_distance", "").strip():
        conditions["max_distance"] = _whole(fields["max_distance"], "max distance", 0, 256)
    return Rule.from_json(
        {
            "name": name,
            "enabled": fields.get("enabled") == "yes",
            "priority": _whole(
                fields.get("priority", "100") or "100", "priority", -MAX_PRIORITY, MAX_PRIORITY
            ),
            "description": fields.get("description", ""),
            "conditions": {k: v for k, v in conditions.items() if v is not None},
            "actions": _actions(fields.get("actions", "")),
        }
    )


def _actions_text(rule: Rule) -> str:
    parts = []
    for spec in rule.actions:
        arg = spec.endpoint or (spec.mode if spec.mode and spec.mode != "copy" else None)
        parts.append(f"{spec.type}:{arg}" if arg else spec.type)
    return ", ".join(parts)


async def _form(request: Request, session: WebSession) -> tuple[dict[str, str], list[str]]:
    fields = await checked_post(request, session)
    if any("\x00" in value for value in fields.values()):
        # PostgreSQL text cannot hold NUL: refused here rather than failing in the driver.
        raise InputError("a field contains a NUL character", hint="remove it and try again")
    form = await request.form()
    kinds = [str(v) for v in form.getlist("source_kinds") if isinstance(v, str)]
    # Ticked match paths, as one comma-separated field (checked by Rule.from_json).
    fields = dict(fields)
    fields["paths"] = ",".join(str(v) for v in form.getlist("paths") if isinstance(v, str))
    return fields, kinds


# -- rules ------------------------------------------------------------------------------------


def _rules_page(
    request: Request, session: WebSession, *, error: AmparoError | None = None, form: Any = None
) -> Response:
    rules = service_of(request).amparo.actions.list_rules()
    return console_page(
        request,
        "console_rules.html",
        {
            "rules": rules,
            "actions_text": _actions_text,
            "action_types": ACTION_TYPES,
            "source_kinds": SOURCE_KINDS,
            "match_paths": PATHS,
            "error": error,
            "form": form or {},
        },
        session=session,
        status=error.http_status if error else 200,
    )


@router.get("/rules")
async def rules_page(request: Request) -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    return await run_in_threadpool(_rules_page, request, session)


@router.post("/rules")
async def create_rule(request: Request) -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    try:
        fields, kinds = await _form(request, session)
    except AmparoError as exc:
        return console_error(request, exc, session)
    try:
        rule = rule_of_form(fields, kinds, fields.get("name", "").strip())
        actions = service_of(request).amparo.actions
        await run_in_threadpool(lambda: actions.add_rule(rule, actor=session.actor))
    except AmparoError as exc:
        return await run_in_threadpool(
            partial(_rules_page, request, session, error=exc, form=fields)
        )
    return redirect(f"{PREFIX}/rules/{rule.name}?saved=1")


def _rule_page(
    request: Request,
    session: WebSession,
    name: str,
    *,
    error: AmparoError | None = None,
    tried: dict[str, Any] | None = None,
) -> Response:
    actions = service_of(request).amparo.actions
    rule = actions.get_rule(validate_name(name, "rule"))
    return console_page(
        request,
        "console_rule.html",
        {
            "rule": rule,
            "actions_text": _actions_text(rule),
            "source_kinds": SOURCE_KINDS,
            "match_paths": PATHS,
            "history": actions.rule_history(rule.name),
            "trail": curation_of(request).trail(f"rule:{rule.name}"),
            "error": error,
            "tried": tried,
            "saved": request.query_params.get("saved") == "1",
        },
        session=session,
        status=error.http_status if error else 200,
    )


async def _show_rule(request: Request, session: WebSession, name: str, **extra: Any) -> Response:
    try:
        return await run_in_threadpool(lambda: _rule_page(request, session, name, **extra))
    except AmparoError as exc:
        return console_error(request, exc, session)


@router.get("/rules/{name}")
async def rule_page(request: Request, name: str) -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    return await _show_rule(request, session, name)


@router.post("/rules/{name}")
async def edit_rule(request: Request, name: str) -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    try:
        fields, kinds = await _form(request, session)
        actions = service_of(request).amparo.actions
        await run_in_threadpool(actions.get_rule, validate_name(name, "rule"))
    except AmparoError as exc:
        return console_error(request, exc, session)
    try:
        rule = rule_of_form(fields, kinds, name)
        await run_in_threadpool(lambda: actions.set_rule(rule, actor=session.actor))
    except AmparoError as exc:
        return await _show_rule(request, session, name, error=exc)
    return redirect(f"{PREFIX}/rules/{rule.name}?saved=1")


async def _switch_rule(request: Request, name: str, enabled: bool) -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    try:
        await checked_post(request, session)
        actions = service_of(request).amparo.actions

        def switch() -> Rule:
            rule = actions.get_rule(validate_name(name, "rule"))
            return actions.set_rule(replace(rule, enabled=enabled), actor=session.actor)

        rule = await run_in_threadpool(switch)
    except AmparoError as exc:
        return console_error(request, exc, session)
    return redirect(f"{PREFIX}/rules/{rule.name}?saved=1")


@router.post("/rules/{name}/disable")
async def disable_rule(request: Request, name: str) -> Response:
    return await _switch_rule(request, name, False)


@router.post("/rules/{name}/enable")
async def enable_rule(request: Request, name: str) -> Response:
    return await _switch_rule(request, name, True)


@router.post("/rules/{name}/test")
async def try_rule(request: Request, name: str) -> Response:
    session = await curator_of(request)
    if isinstance(session, Response):
        return session
    try:
        fields = await checked_post(request, session)
        rule = await run_in_threadpool(
            service_of(request).amparo.actions.get_rule, validate_name(name, "rule")
        )
    except AmparoError as exc:
        return console_error(request, exc, session)
    try:
        sample = SampleMatch(
            bank=fields.get("bank", "").strip()[:NAME_MAX],
            signal_type=fields.get("signal_type", "pdq").strip()[:NAME_MAX] or "pdq",
            distance=_whole(fields.get("distance", "0") or "0", "distance", 0, 256),
            category=fields.get("category", "").strip()[:NAME_MAX] or None,
            source_kind=fields.get("source_kind", "api"),
            path=fields.get("path", "plain") or "plain",
        )
        if not sample.bank:
            raise InputError("name the bank of the match to try", hint="e.g. known")
        acts = curation_of(request).try_rule(rule, sample)
    except AmparoError as exc:
        return await _show_rule(request, session, name, error=exc)
    return await _show_rule(request, session, name, tried={"sample": sample, "acts": acts})
