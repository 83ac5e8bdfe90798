"""Sub-commands imported on demand, so that ``amparo --version`` does not load the app.

Each command module imports what it works with (the app, SQLAlchemy, FastAPI, numba, PyAV);
importing all of them before parsing made every call, ``amparo --version`` included, pay
~0.8 s and 150 MB (issue #18), which ``find | xargs amparo hash`` pays on every batch.
:class:`LazyGroup` knows each sub-command's name and one-line help from a table, lists them
for ``amparo --help`` from that table alone, and imports a module only when its command runs
(or its own ``--help`` is asked for). The command built then is the one Typer would have
built from ``app.command(...)`` / ``app.add_typer(...)``, so options and help are unchanged;
``tests/unit/test_cli_lazy.py`` checks that each table row's summary is the real command's.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import typer
from typer import _click  # Typer's own copy of click: its groups hold these commands
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command


@dataclass(frozen=True)
class LazyCommand:
    """One row of the table: where a sub-command lives and what ``amparo --help`` says of it.

    ``attr`` names a function for a single command (registered with the module's ``HELP``
    as its help and ``options`` as ``app.command`` keywords) or a ``typer.Typer`` for a
    group of commands (registered with ``add_typer``)."""

    name: str
    module: str
    attr: str
    summary: str
    """The first paragraph of the command's help, as the command list shows it."""
    group: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def load(self) -> _click.Command:
        module = importlib.import_module(self.module)
        target = getattr(module, self.attr)
        holder = typer.Typer(add_completion=False)
        holder.callback()(_holder_callback)  # a callback makes Typer build a group
        if self.group:
            holder.add_typer(target, name=self.name)
        else:
            holder.command(self.name, help=module.HELP, **self.options)(target)
        built = get_command(holder)
        assert isinstance(built, TyperGroup)
        return built.commands[self.name]


def _holder_callback() -> None:
    """The group a command is built in is thrown away; only the command is kept."""


def _listing_stub(row: LazyCommand) -> _click.Command:
    return TyperCommand(name=row.name, callback=None, params=[], help=row.summary)


class _Commands(MutableMapping[str, _click.Command]):
    """A group's ``commands``: the table's names from the start, each built on first access."""

    def __init__(self, rows: tuple[LazyCommand, ...], built: MutableMapping[str, _click.Command]):
        self.rows = {row.name: row for row in rows}
        self.built = dict(built)

    def __getitem__(self, name: str) -> _click.Command:
        if name not in self.built:
            row = self.rows.get(name)
            if row is None:
                raise KeyError(name)
            self.built[name] = row.load()
        return self.built[name]

    def __setitem__(self, name: str, command: _click.Command) -> None:
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        found = self.built.pop(name, None) is not None
        found = self.rows.pop(name, None) is not None or found
        if not found:
            raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        yield from self.rows
        yield from (name for name in self.built if name not in self.rows)

    def __len__(self) -> int:
        return len(self.rows.keys() | self.built.keys())

    def __contains__(self, name: object) -> bool:
        return name in self.rows or name in self.built


class LazyGroup(TyperGroup):
    """The ``amparo`` group: :attr:`rows` are its sub-commands, imported when used.

    While the group formats its own help, :meth:`get_command` answers with a stand-in that
    carries only the name and summary, so listing the commands imports none of them."""

    rows: tuple[LazyCommand, ...] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands(self.rows, self.commands)
        self._listing = False

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return list(self.commands)

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        commands = self.commands
        if self._listing and isinstance(commands, _Commands):
            row = commands.rows.get(cmd_name)
            if row is not None and cmd_name not in commands.built:
                return _listing_stub(row)
        return commands.get(cmd_name)

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def lazy_group(*rows: LazyCommand) -> type[LazyGroup]:
    """A :class:`LazyGroup` class with these rows, for ``typer.Typer(cls=...)``."""
    return type("AmparoGroup", (LazyGroup,), {"rows": tuple(rows)})
