"""``amparo match``: look hashes up in the banks."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Annotated

import typer

from amparo.cli.context import EXIT_MATCH, EXIT_OK, emit_json, handle_errors, open_app
from amparo.config import LOCAL_ACTOR
from amparo.errors import InputError
from amparo.events import Source

HELP = """Look hashes up in the banks; one JSON line per match. Exit 1 if anything matched.

A matched sha256 names its content: the action rules run on it (`amparo rules`: cases,
webhooks) as for an API lookup, unless --no-actions is given. Other signals run no rules.

Signals come as arguments, or one per line on stdin with `-` (streamed in batches, so a
million hashes are fine). Example: amparo match --type pdq f8f8f0cee0f4a84f0637...
"""

BATCH = 10_000


def _signals(values: list[str]) -> Iterator[str]:
    for value in values:
        if value == "-":
            for line in sys.stdin:
                line = line.strip()
                if line and not line.startswith("#"):
                    yield line
        else:
            yield value


def _type_of(value: str, given: str | None) -> str:
    if given:
        return given
    by_length = {32: "md5", 40: "sha1"}
    if len(value) in by_length:
        return by_length[len(value)]
    raise InputError(
        f"cannot tell the signal type of {value[:70]!r} from its length",
        hint="pass --type pdq or --type sha256 (both are 64 hex characters)",
    )


@handle_errors
def match_command(
    ctx: typer.Context,
    signals: Annotated[
        list[str], typer.Argument(help="Hashes, or - to read them from stdin.", show_default=False)
    ],
    signal_type: Annotated[
        str | None, typer.Option("--type", "-t", help="pdq, md5, sha1 or sha256.")
    ] = None,
    banks: Annotated[
        list[str] | None, typer.Option("--bank", "-b", help="Only these banks (repeatable).")
    ] = None,
    no_actions: Annotated[
        bool, typer.Option("--no-actions", help="Report matches only; run no action rules.")
    ] = False,
) -> None:
    matched = False
    with open_app(ctx) as amparo:
        batch: list[tuple[str, str]] = []

        def flush() -> None:
            nonlocal matched
            check = amparo.checks.check_signals(
                batch,
                source=Source(kind="cli"),
                actor=LOCAL_ACTOR,
                banks=banks or None,
                one_content=False,  # one hash per line: each sha256 its own content
                act=not no_actions,
            )
            for (stype, value), matches in zip(batch, check.results, strict=True):
                for m in matches:
                    matched = True
                    emit_json({"query": value, "query_type": stype, **m.to_json()})
            batch.clear()

        for value in _signals(signals):
            batch.append((_type_of(value, signal_type), value))
            if len(batch) >= BATCH:
                flush()
        if batch:
            flush()
    raise typer.Exit(EXIT_MATCH if matched else EXIT_OK)
