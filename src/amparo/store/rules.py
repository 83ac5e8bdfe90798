"""Action rules and the actions-taken log in the installation's database.

Every rule change writes a new immutable version (removal too), bumps the ``rule_generation``
counter so every process reloads its cached rules, and writes the audit log, in one
transaction. An action taken is recorded with its outcome; a webhook action's outbox event
is written in the same transaction as its record, so neither exists without the other.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from amparo.actions.records import ActionRecord
from amparo.actions.rules import ActionSpec, Conditions, Rule
from amparo.clock import as_utc, utc_now
from amparo.errors import ConflictError, InputError, NotFoundError
from amparo.names import validate_name
from amparo.store.models import CounterRow
from amparo.store.models_actions import ActionTakenRow, RuleVersionRow, WebhookEndpointRow
from amparo.store.webhooks import enqueue

if TYPE_CHECKING:
    from amparo.store.uow import Database

_rules = cast(Table, RuleVersionRow.__table__)
_taken = cast(Table, ActionTakenRow.__table__)
_endpoints = cast(Table, WebhookEndpointRow.__table__)
_counter = cast(Table, CounterRow.__table__)
GENERATION = "rule_generation"


def _rule(row: Any) -> Rule:
    return Rule(
        name=row.name,
        version=int(row.version),
        enabled=bool(row.enabled),
        deleted=bool(row.deleted),
        priority=int(row.priority),
        description=row.description,
        conditions=Conditions.from_json(json.loads(row.conditions)),
        actions=tuple(ActionSpec.from_json(a) for a in json.loads(row.actions)),
        created_at=as_utc(row.created_at),
        created_by=row.created_by,
    )


def _record(row: Any) -> ActionRecord:
    return ActionRecord(
        id=int(row.id),
        at=as_utc(row.at),
        actor=row.actor,
        rule=row.rule,
        rule_version=int(row.rule_version),
        action=row.action,
        sha256=row.sha256,
        source=json.loads(row.source),
        outcome=row.outcome,
        detail=json.loads(row.detail),
        error=row.error,
    )


class RuleRepository:
    """Versioned action rules."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def generation(self) -> int:
        """Moves on with every rule change (any process): cached rule sets compare it."""
        with self._db.reading() as conn:
            value = conn.execute(
                select(_counter.c.value).where(_counter.c.name == GENERATION)
            ).scalar()
        return int(value or 0)

    def current(self) -> list[Rule]:
        """The latest version of every rule not removed (enabled or not), in run order."""
        latest = (
            select(_rules.c.name, func.max(_rules.c.version).label("version"))
            .group_by(_rules.c.name)
            .subquery()
        )
        query = select(_rules).join(
            latest, and_(_rules.c.name == latest.c.name, _rules.c.version == latest.c.version)
        )
        with self._db.reading() as conn:
            rules = [_rule(r) for r in conn.execute(query) if not r.deleted]
        return sorted(rules, key=lambda r: (r.priority, r.name))

    def get(self, name: str, version: int | None = None) -> Rule:
        """A rule's latest version (or the one asked for, removed ones included)."""
        query = select(_rules).where(_rules.c.name == name)
        if version is None:
            query = query.order_by(_rules.c.version.desc()).limit(1)
        else:
            query = query.where(_rules.c.version == version)
        with self._db.reading() as conn:
            row = conn.execute(query).first()
        if row is None or (version is None and row.deleted):
            what = f"rule {name!r}" + (f" version {version}" if version is not None else "")
            raise NotFoundError(f"no {what}", hint="see `amparo rules list`")
        return _rule(row)

    def history(self, name: str) -> list[Rule]:
        """Every version of a rule, oldest first (a removal is a version with ``deleted``)."""
        with self._db.reading() as conn:
            rows = conn.execute(
                select(_rules).where(_rules.c.name == name).order_by(_rules.c.version)
            ).all()
        if not rows:
            raise NotFoundError(
                f"no rule {name!r} has ever existed", hint="see `amparo rules list`"
            )
        return [_rule(r) for r in rows]

    def create(self, rule: Rule, *, actor: str) -> Rule:
        """Add a new rule (a name that was removed may be used again; its history goes on)."""
        return self._write(rule, actor=actor, action="rule.create", must_exist=False)

    def replace(self, rule: Rule, *, actor: str) -> Rule:
        """Write a new version of an existing rule. An unchanged rule writes nothing."""
        current = self.get(rule.name)
        if _same(current, rule):
            return current
        return self._write(rule, actor=actor, action="rule.update", must_exist=True)

    def delete(self, name: str, *, actor: str) -> Rule:
        """Remove a rule: it stops acting at once; its versions stay in the history."""
        current = self.get(name)
        gone = Rule(
            name=name,
            actions=current.actions,
            conditions=current.conditions,
            enabled=False,
            priority=current.priority,
            description=current.description,
            deleted=True,
        )
        return self._write(gone, actor=actor, action="rule.delete", must_exist=True)

    def _write(self, rule: Rule, *, actor: str, action: str, must_exist: bool) -> Rule:
        validate_name(rule.name, "rule")
        try:
            with self._db.transaction() as tx:
                if not rule.deleted:
                    _check_endpoints(tx.conn, rule)
                last = tx.conn.execute(
                    select(_rules.c.version, _rules.c.deleted)
                    .where(_rules.c.name == rule.name)
                    .order_by(_rules.c.version.desc())
                    .limit(1)
                ).first()
                exists = last is not None and not last.deleted
                if must_exist and not exists:
                    raise NotFoundError(f"no rule {rule.name!r}", hint="see `amparo rules list`")
                if not must_exist and exists:
                    raise ConflictError(
                        f"a rule named {rule.name!r} already exists",
                        hint=f"change it with `amparo rules set {rule.name}`, or pick another name",
                    )
                version = (int(last.version) if last is not None else 0) + 1
                values = {
                    "name": rule.name,
                    "version": version,
                    "enabled": rule.enabled,
                    "deleted": rule.deleted,
                    "priority": rule.priority,
                    "description": rule.description,
                    "conditions": json.dumps(rule.conditions.to_json(), sort_keys=True),
                    "actions": json.dumps([a.to_json() for a in rule.actions]),
                    "created_at": utc_now(),
                    "created_by": actor,
                }
                tx.conn.execute(insert(_rules).values(**values))
                tx.conn.execute(
                    update(_counter)
                    .where(_counter.c.name == GENERATION)
                    .values(value=_counter.c.value + 1)
                )
                details = {"version": version, **rule.to_json()}
                details.pop("name")
                tx.audit(actor, action, f"rule:{rule.name}", details)
        except IntegrityError:
            raise ConflictError(
                f"rule {rule.name!r} was changed by someone else at the same time",
                hint="read it again and repeat the change",
            ) from None
        return self.get(rule.name, version)


class ActionLog:
    """The actions-taken log: every action a rule took on a find, with its outcome."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self,
        *,
        actor: str,
        rule: Rule,
        action: str,
        sha256: str,
        source: dict[str, Any],
        outcome: str,
        detail: dict[str, Any],
        error: str | None = None,
        webhook: tuple[str, str, str] | None = None,
        now: datetime | None = None,
    ) -> int:
        """Record one action; with ``webhook=(event_id, endpoint, payload)`` also enqueue the
        event (due at ``now``), in the same transaction. Returns the record's id."""
        now = now or utc_now()
        with self._db.transaction(refresh=False) as tx:
            if webhook is not None:
                enqueue(tx, event_id=webhook[0], endpoint=webhook[1], payload=webhook[2], now=now)
            result = tx.conn.execute(
                insert(_taken).values(
                    at=now,
                    actor=actor,
                    rule=rule.name,
                    rule_version=rule.version,
                    action=action,
                    sha256=sha256,
                    source=json.dumps(source, default=str),
                    outcome=outcome,
                    detail=json.dumps(detail, default=str),
                    error=error,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def log(
        self,
        *,
        limit: int = 100,
        sha256: str | None = None,
        rule: str | None = None,
        outcome: str | None = None,
    ) -> list[ActionRecord]:
        """Actions taken, newest first."""
        query = select(_taken).order_by(_taken.c.id.desc()).limit(limit)
        if sha256 is not None:
            query = query.where(_taken.c.sha256 == sha256.lower())
        if rule is not None:
            query = query.where(_taken.c.rule == rule)
        if outcome is not None:
            query = query.where(_taken.c.outcome == outcome)
        with self._db.reading() as conn:
            return [_record(r) for r in conn.execute(query)]


def _check_endpoints(conn: Connection, rule: Rule) -> None:
    wanted = {a.endpoint for a in rule.actions if a.endpoint}
    if not wanted:
        return
    known = set(
        conn.execute(
            select(_endpoints.c.name).where(_endpoints.c.name.in_(sorted(wanted)))
        ).scalars()
    )
    missing = sorted(wanted - known)
    if missing:
        raise InputError(
            f"rule {rule.name!r} sends to webhook endpoint {missing[0]!r}, which is unknown",
            hint=f"add it first: amparo webhooks add {missing[0]} https://...",
        )


def _same(a: Rule, b: Rule) -> bool:
    return (a.enabled, a.priority, a.description, a.conditions, a.actions) == (
        b.enabled,
        b.priority,
        b.description,
        b.conditions,
        b.actions,
    )
