"""What every command shares: settings from flags, the opened app, and error reporting."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from amparo.config import Settings, load_settings
from amparo.errors import AmparoError

if TYPE_CHECKING:
    from rich.console import Console

    from amparo.app import Amparo

P = ParamSpec("P")
R = TypeVar("R")

# Results go to stdout (often piped); messages, progress and errors to stderr.
err_console: Console
"""Where messages, progress and errors go. Made (and Rich imported) on first use, through the
module ``__getattr__`` below: ``amparo hash`` prints nothing on it unless a file fails."""

EXIT_OK = 0
EXIT_MATCH = 1
EXIT_ERROR = 2


class GlobalOptions:
    """Options given before the command (``amparo --home DIR bank list``)."""

    home: Path | None = None
    database_url: str | None = None
    config: Path | None = None


def settings_from(ctx: typer.Context, **overrides: Any) -> Settings:
    opts: GlobalOptions = ctx.find_root().obj or GlobalOptions()
    values = {"home": opts.home, "database_url": opts.database_url}
    values.update(overrides)
    return load_settings(config_file=opts.config, overrides=values)


app_factory: Callable[[Settings], Amparo]
"""What builds the installation a command opens. The seam CLI tests use to put fakes behind
a command (``monkeypatch.setattr(context, "app_factory", build)``, where ``build`` returns an
``Amparo`` with, say, its ``exchanges`` service replaced); commands never set it.

Unset, it is :class:`amparo.app.Amparo`, imported only when asked for (module ``__getattr__``):
this module is imported by ``amparo hash``, which must not load the app (issue #18)."""


def _app_factory() -> Callable[[Settings], Amparo]:
    factory: Callable[[Settings], Amparo] | None = globals().get("app_factory")
    if factory is None:
        from amparo.app import Amparo

        factory = Amparo
    return factory


def _err_console() -> Console:
    console: Console | None = globals().get("err_console")
    if console is None:
        from rich.console import Console

        console = Console(stderr=True, highlight=False)
        globals()["err_console"] = console
    return console


def __getattr__(name: str) -> object:
    if name == "app_factory":
        return _app_factory()
    if name == "err_console":
        return _err_console()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@contextmanager
def open_app(ctx: typer.Context, **overrides: Any) -> Iterator[Amparo]:
    app = _app_factory()(settings_from(ctx, **overrides))
    try:
        yield app
    finally:
        app.close()


def fail(message: str, hint: str | None = None, code: int = EXIT_ERROR) -> typer.Exit:
    from rich.markup import escape

    from amparo.cli.terminal import terminal_safe

    # Escaped: messages and hints are text ("amparo[ray]", "s3://BUCKET[/PREFIX]", paths),
    # and may name a scanned file or key: no control character of theirs reaches the terminal.
    console = _err_console()
    text = escape(terminal_safe(message, keep_lines=True))
    console.print(f"[bold red]error:[/] {text}", markup=True, soft_wrap=True)
    if hint:
        text = escape(terminal_safe(hint, keep_lines=True))
        console.print(f"[dim]hint:[/] {text}", markup=True, soft_wrap=True)
    return typer.Exit(code)


# Largest id a database row can have (64-bit signed): id arguments are bounded by it, so a
# larger number is refused by the parser instead of overflowing in the database driver.
ID_MAX = 2**63 - 1


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn Amparo's errors into one clear line plus a hint, and exit code 2; never a
    traceback for a problem the user can fix."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except AmparoError as exc:
            raise fail(exc.message, exc.hint, exc.exit_code) from None
        except UnicodeDecodeError:
            raise fail(
                "the input is not UTF-8 text", hint="hash lists are text files (UTF-8)"
            ) from None
        except OSError as exc:
            raise fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=130) from None

    return wrapper


def emit_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, default=str, ensure_ascii=False) + "\n")
