"""``amparo rules``: action rules, what happens to a match (see docs/actions.md)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from amparo.actions import Rule
from amparo.cli.context import emit_json, err_console, handle_errors, open_app
from amparo.config import LOCAL_ACTOR
from amparo.errors import InputError

app = typer.Typer(
    help="Action rules: what happens to a match.\n\nExample: amparo rules add known-to-review "
    "--bank known --review --webhook platform",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Rule name.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")]
Banks = Annotated[list[str] | None, typer.Option("--bank", help="Only matches in this bank.")]
Categories = Annotated[
    list[str] | None, typer.Option("--category", help="Only matches of this category.")
]
SignalTypes = Annotated[
    list[str] | None, typer.Option("--signal-type", help="Only matches by this signal type.")
]
MaxDistance = Annotated[
    int | None, typer.Option("--max-distance", min=0, help="Only matches at most this far.")
]
SourceKinds = Annotated[
    list[str] | None, typer.Option("--source-kind", help="Only finds from api, scan, cli or retro.")
]
MatchPaths = Annotated[
    list[str] | None,
    typer.Option(
        "--path",
        help="Only matches found this way: plain, trimmed, variant or dihedral "
        "(mirrored or rotated).",
    ),
]
Review = Annotated[bool, typer.Option("--review", help="Action: open or extend a case.")]
Webhooks = Annotated[
    list[str] | None, typer.Option("--webhook", help="Action: send an event to this endpoint.")
]
Quarantine = Annotated[
    str | None, typer.Option("--quarantine", help="Action: quarantine, mode copy or move.")
]
Report = Annotated[bool, typer.Option("--report", help="Action: queue a report draft.")]
Priority = Annotated[int | None, typer.Option("--priority", help="Lower runs first (100).")]
Description = Annotated[str | None, typer.Option("--description", help="What the rule is for.")]
FileOpt = Annotated[
    Path | None,
    typer.Option("--file", help="The rule as a JSON or TOML file (flags given override it)."),
]


def _read_file(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path} is not valid {path.suffix[1:] or 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold one rule (an object)")
    return data


def _merge(
    data: dict[str, Any],
    *,
    banks: list[str] | None,
    categories: list[str] | None,
    signal_types: list[str] | None,
    max_distance: int | None,
    source_kinds: list[str] | None,
    paths: list[str] | None,
    review: bool,
    webhooks: list[str] | None,
    quarantine: str | None,
    report: bool,
    priority: int | None,
    description: str | None,
    enabled: bool | None,
) -> dict[str, Any]:
    """Apply the flags that were given to a rule's JSON form."""
    raw = data.get("conditions") or {}
    if not isinstance(raw, dict):
        raise InputError("conditions must be an object (a table in TOML)")
    conditions = dict(raw)
    for key, value in (
        ("banks", banks),
        ("categories", categories),
        ("signal_types", signal_types),
        ("source_kinds", source_kinds),
        ("max_distance", max_distance),
        ("paths", paths),
    ):
        if value is not None:
            conditions[key] = value
    data["conditions"] = conditions
    actions: list[Any] = []
    if review:
        actions.append({"type": "review"})
    actions.extend({"type": "webhook", "endpoint": e} for e in webhooks or ())
    if quarantine is not None:
        actions.append({"type": "quarantine", "mode": quarantine})
    if report:
        actions.append({"type": "report"})
    if actions:
        data["actions"] = actions
    extra: dict[str, object] = {
        "priority": priority,
        "description": description,
        "enabled": enabled,
    }
    data.update({k: v for k, v in extra.items() if v is not None})
    return data


def _print_rules(rules: list[Rule], as_json: bool) -> None:
    if as_json:
        for r in rules:
            emit_json(r.to_json())
        return
    table = Table("name", "version", "enabled", "priority", "conditions", "actions")
    for r in rules:
        conditions = ", ".join(
            f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in r.conditions.to_json().items()
        )
        actions = ", ".join(
            a.type + (f":{a.endpoint or a.mode}" if a.endpoint or a.mode else "") for a in r.actions
        )
        state = "removed" if r.deleted else ("yes" if r.enabled else "no")
        table.add_row(r.name, str(r.version), state, str(r.priority), conditions or "any", actions)
    Console().print(table)


@app.command("list")
@handle_errors
def list_rules(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List rules in the order they run."""
    with open_app(ctx) as amparo:
        _print_rules(amparo.actions.list_rules(), as_json)


@app.command("add")
@handle_errors
def add(
    ctx: typer.Context,
    name: NameArg,
    bank: Banks = None,
    category: Categories = None,
    signal_type: SignalTypes = None,
    max_distance: MaxDistance = None,
    source_kind: SourceKinds = None,
    path: MatchPaths = None,
    review: Review = False,
    webhook: Webhooks = None,
    quarantine: Quarantine = None,
    report: Report = False,
    priority: Priority = None,
    description: Description = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it disabled.")] = False,
    file: FileOpt = None,
) -> None:
    """Add a rule. Conditions left out match anything; at least one action is needed.

    Example: amparo rules add scans-a --source-kind scan --category A1 --review --report
    """
    data = _read_file(file) if file is not None else {}
    data = _merge(
        data,
        banks=bank,
        categories=category,
        signal_types=signal_type,
        max_distance=max_distance,
        source_kinds=source_kind,
        paths=path,
        review=review,
        webhooks=webhook,
        quarantine=quarantine,
        report=report,
        priority=priority,
        description=description,
        enabled=False if disabled else None,
    )
    if not data.get("actions"):
        raise InputError(
            f"rule {name!r} has no actions",
            hint="give --review, --webhook ENDPOINT, --quarantine copy|move or --report",
        )
    with open_app(ctx) as amparo:
        rule = amparo.actions.add_rule(Rule.from_json(data, name=name), actor=LOCAL_ACTOR)
    err_console.print(f"added rule {rule.name} (version {rule.version})", markup=False)


@app.command("set")
@handle_errors
def set_(
    ctx: typer.Context,
    name: NameArg,
    bank: Banks = None,
    category: Categories = None,
    signal_type: SignalTypes = None,
    max_distance: MaxDistance = None,
    source_kind: SourceKinds = None,
    path: MatchPaths = None,
    review: Review = False,
    webhook: Webhooks = None,
    quarantine: Quarantine = None,
    report: Report = False,
    priority: Priority = None,
    description: Description = None,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Enable or disable the rule.")
    ] = None,
    clear_conditions: Annotated[
        bool, typer.Option("--clear-conditions", help="Drop every condition first.")
    ] = False,
    file: FileOpt = None,
) -> None:
    """Change a rule (a new version). A condition flag replaces that condition; any action
    flag replaces the whole action list; --file replaces the rule.

    Example: amparo rules set known-to-review --max-distance 20
    """
    with open_app(ctx) as amparo:
        data = _read_file(file) if file is not None else amparo.actions.get_rule(name).to_json()
        if clear_conditions:
            data["conditions"] = {}
        data = _merge(
            data,
            banks=bank,
            categories=category,
            signal_types=signal_type,
            max_distance=max_distance,
            source_kinds=source_kind,
            paths=path,
            review=review,
            webhooks=webhook,
            quarantine=quarantine,
            report=report,
            priority=priority,
            description=description,
            enabled=enabled,
        )
        rule = amparo.actions.set_rule(Rule.from_json(data, name=name), actor=LOCAL_ACTOR)
    err_console.print(f"rule {rule.name} is at version {rule.version}", markup=False)


@app.command("show")
@handle_errors
def show(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[int | None, typer.Option("--version", min=1, help="An older one.")] = None,
) -> None:
    """Print a rule as JSON (the form --file takes)."""
    with open_app(ctx) as amparo:
        emit_json(amparo.actions.get_rule(name, version).to_json())


@app.command("remove")
@handle_errors
def remove(ctx: typer.Context, name: NameArg) -> None:
    """Remove a rule: it stops acting at once; its history stays."""
    with open_app(ctx) as amparo:
        rule = amparo.actions.remove_rule(name, actor=LOCAL_ACTOR)
    err_console.print(f"removed rule {name} (version {rule.version} records it)", markup=False)


@app.command("history")
@handle_errors
def history(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Every version of a rule, oldest first, with who changed it and when."""
    with open_app(ctx) as amparo:
        versions = amparo.actions.rule_history(name)
    if as_json:
        for r in versions:
            emit_json(r.to_json())
        return
    _print_rules(versions, False)
    for r in versions:
        when = f"{r.created_at:%Y-%m-%d %H:%M:%S}" if r.created_at else "?"
        err_console.print(f"v{r.version}: {when} UTC by {r.created_by}", markup=False)


@app.command("log")
@handle_errors
def log(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most records shown.")] = 50,
    sha256: Annotated[str | None, typer.Option("--sha256", help="Only this content.")] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule.")] = None,
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="done, failed or skipped.")
    ] = None,
) -> None:
    """The actions taken, newest first, as JSON lines."""
    with open_app(ctx) as amparo:
        for record in amparo.actions.log(limit=limit, sha256=sha256, rule=rule, outcome=outcome):
            emit_json(record.to_json())
