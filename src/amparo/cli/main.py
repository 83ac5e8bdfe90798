"""The ``amparo`` entry point: runs the command line, and turns a crash into one line.

The command itself is defined in :mod:`amparo.cli.commands` and imported here on first use:
``amparo --version`` alone, the call scripts make to check what is installed, is answered
before Typer, Rich or any command module is imported (issue #18: start-up is paid by every
call of ``find | xargs amparo hash``). ``app`` is still importable from this module.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from amparo import __version__

if TYPE_CHECKING:
    import typer

    from amparo.cli.commands import app

__all__ = ["app", "main"]


def _app() -> typer.Typer:
    found: typer.Typer | None = globals().get("app")  # a test may have replaced it
    if found is None:
        from amparo.cli import commands

        found = commands.app
    return found


def __getattr__(name: str) -> object:
    if name == "app":
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"amparo {__version__}\n")  # what `amparo --version` prints via Typer
        return
    from amparo.cli.context import EXIT_ERROR, fail

    try:
        _app()()
    except KeyboardInterrupt:
        fail("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug: one clear line, the traceback only on request
        if os.environ.get("AMPARO_TRACEBACK"):
            raise
        fail(
            f"unexpected error (a bug in amparo): {type(exc).__name__}: {exc}",
            hint="run again with AMPARO_TRACEBACK=1 to see where, and report it",
        )
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
