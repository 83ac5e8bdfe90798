"""Opening a verified report package into a private folder (``amparo package open``).

Everything goes to a fresh folder beside the destination (mode 0700, files 0600) while the
package is verified; only a package with no problem is renamed into place, so a refused or
interrupted one leaves nothing half-written and no decrypted file behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from amparo.errors import InputError, PackageRefusedError
from amparo.reports.package_result import Verification
from amparo.reports.package_verify import verify_package


def open_package(path: Path, out: Path, key: bytes | None) -> Verification:
    """Verify ``path`` and write its members (files decrypted) to the new folder ``out``,
    which must not exist or be empty. Raises :class:`InputError` naming the first problem
    (the result's ``problems`` lists them all) and writes nothing then."""
    out = out.absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(
            f"{out} already exists and is not an empty folder",
            hint="give a new folder for --out; nothing is overwritten",
        )
    if not out.parent.is_dir():
        raise InputError(f"{out.parent} is not a folder", hint="create it first")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".opening", dir=out.parent))
    try:
        os.chmod(tmp, 0o700)

        def write(name: str, data: bytes) -> None:
            target = tmp / name
            if target.parent != tmp:
                target.parent.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)

        result = verify_package(path, key, sink=write)
        if result.encrypted and key is None and result.ok:
            raise InputError(
                f"the files in {path.name} are encrypted",
                hint="give the key the sender sent separately: --key KEYFILE",
            )
        if not result.ok:
            first = result.problems[0]
            more = len(result.problems) - 1
            raise PackageRefusedError(
                f"{result.package} refused: {first}" + (f" (and {more} more)" if more else ""),
                hint="nothing was written; ask the sender for the package again, or run "
                "`amparo package verify` to see every problem",
                problems=[str(p) for p in result.problems],
            )
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result
