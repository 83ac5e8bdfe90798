"""``amparo package``: for the recipient of a report package (a hotline, the police).

These commands need no Amparo home, database or settings: they read the zip and the key file
and nothing else, so a recipient runs them after a plain ``pip install amparo``. Only the
standard library, typer and :mod:`amparo.reports.package_verify` are imported.

Every line printed goes through :func:`terminal_safe`: a received package is the sender's
data (a hostile one names members and fills its manifest with ESC sequences).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from amparo.cli.terminal import terminal_safe
from amparo.errors import AmparoError, PackageRefusedError

app = typer.Typer(
    help="Verify and open a report package you received (no Amparo installation needed "
    "beyond `pip install amparo`).\n\nExample: amparo package open report-3.zip --key "
    "report-3.key --out report-3",
    no_args_is_help=True,
)

PackageArg = Annotated[
    Path, typer.Argument(help="The .zip written by `amparo reports package`.", show_default=False)
]
KeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--key",
        help="File holding the package key (the 64 hex characters the sender gave you).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def _say(line: object, err: bool = False) -> None:
    typer.echo(terminal_safe(line), err=err)


def _summary(lines: list[str]) -> None:
    _say(f"verified {lines[0]}")
    for line in lines[1:]:
        _say(f"  {line}")


def _fail(message: str, hint: str | None) -> NoReturn:
    _say(f"error: {message}", err=True)
    if hint:
        _say(f"hint: {hint}", err=True)
    raise typer.Exit(2)


@app.command("verify")
def verify(package: PackageArg, key_file: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Check the zip, the manifest, every member's SHA-256 and the chain-of-custody log;
    with --key, also that each file decrypts and matches its original SHA-256. Writes
    nothing. Exit 0 when intact, 2 otherwise. Example: amparo package verify report-3.zip
    --key report-3.key"""
    from amparo.reports.package_verify import read_key, verify_package

    try:
        key = read_key(key_file) if key_file is not None else None
        result = verify_package(package, key)
    except AmparoError as exc:
        _fail(exc.message, exc.hint)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename or package}", None)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
    if not result.ok:
        for problem in result.problems:
            _say(f"problem: {problem}", err=True)
        _fail(
            f"{package.name} failed verification: {len(result.problems)} problem(s)",
            "do not rely on this package; ask the sender for it again",
        )
    if not as_json:
        _summary(result.summary())


@app.command("open")
def open_(
    package: PackageArg,
    out: Annotated[
        Path, typer.Option("--out", help="New folder to write to (created 0700; must not exist).")
    ],
    key_file: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify the package (as `verify --key` does) and, only if everything checks, write
    the reports, manifest, custody log and the decrypted files to a new folder readable by
    you alone. Example: amparo package open report-3.zip --key report-3.key --out report-3"""
    from amparo.reports.package_open import open_package
    from amparo.reports.package_verify import read_key

    try:
        key = read_key(key_file) if key_file is not None else None
        result = open_package(package, out, key)
    except PackageRefusedError as exc:
        for problem in exc.problems:
            _say(f"problem: {problem}", err=True)
        _fail(exc.message, exc.hint)
    except AmparoError as exc:
        _fail(exc.message, exc.hint)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename or package}", None)
    if as_json:
        sys.stdout.write(json.dumps({**result.to_json(), "out": str(out)}) + "\n")
        return
    _summary(result.summary())
    _say(f"opened into {out} (readable by you only)")
