"""How ``amparo exchange`` shows things: status tables and JSON, fetch results, the follow loop.

Kept apart from :mod:`amparo.cli.exchange` (the Typer group and its commands) so the commands
read as what they do and the shaping of what they print lives in one place. JSON output has
the same fields as the API's ``GET /v1/exchanges/{name}``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from amparo.app import Amparo
from amparo.cli.context import emit_json, err_console
from amparo.clock import utc_now
from amparo.errors import AmparoError, ExchangeError
from amparo.exchanges.model import CollaborationStatus, FetchResult, QuarantinedItem

if TYPE_CHECKING:  # the exchange types load lazily, when `exchange types` asks for them
    from amparo.exchanges.base import Exchange

# -- JSON -----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def status_json(s: CollaborationStatus) -> dict[str, Any]:
    """The same fields as ``GET /v1/exchanges/{name}``: the collaboration's, then its status."""
    c = s.collaboration
    data: dict[str, Any] = {
        "name": c.name,
        "exchange": c.exchange,
        "bank": c.bank,
        "settings": c.settings,
        "credentials": c.credentials,  # the reference; the secret is never loaded here
        "interval_seconds": c.interval_seconds,
        "enabled": c.enabled,
        "feedback": c.feedback,
        "created_at": c.created_at,
    }
    for f in fields(s):
        if f.name != "collaboration":
            data[f.name] = getattr(s, f.name)
    return _plain(data)  # type: ignore[no-any-return]


def quarantined_json(q: QuarantinedItem) -> dict[str, Any]:
    data = asdict(q)
    data.pop("collaboration", None)
    return _plain(data)  # type: ignore[no-any-return]


# -- text -----------------------------------------------------------------------------------


def when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value is not None else "never"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            whole, rest = divmod(seconds, size)
            below = {"d": ("h", 3600), "h": ("m", 60), "m": ("s", 1)}[unit]
            part = rest // below[1]
            return f"{whole}{unit}" + (f"{part}{below[0]}" if part else "")
    return f"{seconds}s"


def fetch_summary(r: FetchResult) -> str:
    if not r.fetched:
        return f"{r.collaboration}: skipped: another process holds the lease"
    text = (
        f"{r.collaboration}: {r.upserts:,} upserts, {r.deletions:,} deletions "
        f"(+{r.added:,} added, -{r.removed:,} removed), {r.quarantined:,} quarantined, "
        f"{r.skipped_loops:,} skipped loops, {_count(r.batches, 'batch', 'batches')}"
    )
    if r.full:
        text += " (full fetch)"
    return text


def fetch_hint(name: str) -> str:
    return (
        f"what was fetched before the failure is kept; `amparo exchange show {name}` shows "
        f"the last error; fix the source or credentials and run `amparo exchange fetch {name}`"
    )


def checkpoint_summary(checkpoint: dict[str, Any] | None, width: int = 60) -> str:
    if not checkpoint:
        return "none (the next fetch is a full fetch)"
    parts = []
    for key, value in sorted(checkpoint.items()):
        text = str(value)
        parts.append(f"{key}={text[:width] + '...' if len(text) > width else text}")
    return ", ".join(parts)


# -- tables ---------------------------------------------------------------------------------


def print_list(statuses: list[CollaborationStatus]) -> None:
    """``exchange list``: one row per collaboration, or a hint to add one."""
    table = Table(
        "name", "type", "bank", "enabled", "interval", "last fetch", "lag", "records",
        "quarantined", "last error",
    )  # fmt: skip
    for s in statuses:
        c = s.collaboration
        table.add_row(
            c.name,
            c.exchange,
            c.bank,
            "yes" if c.enabled else "paused",
            duration(c.interval_seconds),
            when(s.last_fetch_at),
            duration(s.lag_seconds),
            f"{s.records:,}",
            f"{s.quarantined:,}",
            (s.last_error or "")[:60],
        )
    Console().print(table)
    if not statuses:
        err_console.print(
            "no collaborations yet: amparo exchange add NAME --type TYPE --bank BANK",
            markup=False,
        )


def print_status(s: CollaborationStatus, quarantine: list[QuarantinedItem]) -> None:
    """``exchange show``: the collaboration's fields and status, then its first quarantined
    items."""
    c = s.collaboration
    table = Table("field", "value", show_header=False, box=None)
    rows: list[tuple[str, str]] = [
        ("name", c.name),
        ("exchange type", c.exchange),
        ("bank", c.bank),
        ("enabled", "yes" if c.enabled else "no (paused)"),
        ("interval", duration(c.interval_seconds)),
        ("feedback", "on" if c.feedback else "off"),
        ("credentials", c.credentials or "none"),
        ("settings", json.dumps(c.settings, sort_keys=True) if c.settings else "none"),
        ("last successful fetch", when(s.last_fetch_at)),
        ("last attempt", when(s.last_attempt_at)),
        ("lag", duration(s.lag_seconds)),
        ("entries added", f"{s.entries_added:,}"),
        ("entries removed", f"{s.entries_removed:,}"),
        ("records", f"{s.records:,}"),
        ("quarantined", f"{s.quarantined:,}"),
        ("pending opinions", f"{s.pending_opinions:,}"),
        ("last error", s.last_error or "none"),
        ("lease holder", s.lease_holder or "none"),
        ("next fetch", when(s.next_fetch_at) if c.enabled else "paused"),
        ("checkpoint", checkpoint_summary(s.checkpoint)),
    ]
    for label, value in rows:
        table.add_row(label, value)
    Console().print(table)
    if quarantine:
        Console().print("quarantined (first few):")
        for q in quarantine:
            what = f"record {q.record_id}" if q.record_id else "page"
            Console().print(
                f"  #{q.id} {what}: {q.reason} ({_count(q.attempts, 'attempt', 'attempts')})",
                markup=False,
                soft_wrap=True,
            )


def print_types(found: Mapping[str, type[Exchange]], as_json: bool) -> None:
    """``exchange types``: each registered exchange class, as JSON lines or a table."""
    if as_json:
        for kind, cls in found.items():
            emit_json(
                {
                    "name": kind,
                    "description": cls.description,
                    "supports_feedback": cls.supports_feedback,
                    "needs_credentials": cls.needs_credentials,
                }
            )
        return
    table = Table("type", "description", "feedback", "credentials")
    for kind, cls in found.items():
        table.add_row(
            kind,
            cls.description,
            "yes" if cls.supports_feedback else "no",
            "needed" if cls.needs_credentials else "none",
        )
    Console().print(table)


# -- fetching -------------------------------------------------------------------------------


class Reporter:
    """Prints each fetch (stdout: results; stderr: failures) and remembers what failed."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.failed: list[str] = []
        self.out = Console(highlight=False, soft_wrap=True)

    def run(
        self, name: str, do: Callable[[], FetchResult], *, single: str | None = None
    ) -> FetchResult | None:
        """Run one fetch. Errors of the source (``ExchangeError``) are a failed fetch; other
        errors are bad input: raised when the user named this collaboration, else reported
        so the other collaborations are still fetched."""
        try:
            result = do()
        except ExchangeError as exc:
            self.failed_fetch(name, exc.message, exc.hint or fetch_hint(name))
            return None
        except AmparoError as exc:
            if single is not None:
                raise
            self.failed_fetch(name, exc.message, exc.hint)
            return None
        self.show(result)
        return result

    def show(self, result: FetchResult) -> None:
        if self.as_json:
            emit_json(asdict(result))
        else:
            self.out.print(fetch_summary(result), markup=False)
        if result.error:
            name = result.collaboration
            self.failed_fetch(name, result.error, fetch_hint(name))

    def failed_fetch(self, name: str, message: str, hint: str | None) -> None:
        self.failed.append(name)
        err_console.print(
            f"[bold red]{escape(name)}: fetch failed:[/] {escape(message)}", soft_wrap=True
        )
        if hint:
            err_console.print(f"[dim]hint:[/] {escape(hint)}", markup=True, soft_wrap=True)


def follow_schedule(amparo: Amparo, name: str | None, report: Reporter) -> None:
    """Keep fetching on schedule until Ctrl-C or SIGTERM: every ``exchange_poll_seconds``
    look for what is due (one collaboration, or all of them through ``fetch_due`` as serve
    does), then send queued opinions. Failures are printed and the loop goes on."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    with contextlib.suppress(ValueError):  # not the main thread: Ctrl-C still works
        signal.signal(signal.SIGTERM, on_signal)
    poll = max(0.05, float(amparo.settings.exchange_poll_seconds))
    service = amparo.exchanges
    err_console.print(
        f"following {name or 'every enabled collaboration'} on schedule; Ctrl-C stops",
        markup=False,
    )
    with contextlib.suppress(KeyboardInterrupt):
        while not stop.wait(poll):
            if name is not None:
                status = service.status(name)
                due = status.next_fetch_at is None or _aware(status.next_fetch_at) <= utc_now()
                if status.collaboration.enabled and due:
                    report.run(name, lambda: service.fetch(name), single=name)
            else:
                try:
                    results = service.fetch_due()
                except AmparoError as exc:
                    report.failed_fetch("fetch_due", exc.message, exc.hint)
                    results = []
                for result in results:
                    report.show(result)
            try:
                service.deliver_opinions()
            except AmparoError as exc:
                err_console.print(f"sending opinions failed: {exc}", markup=False)
    err_console.print("stopped", markup=False)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"
