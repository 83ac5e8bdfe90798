"""How long does a CLI call take before it does anything? (issue #18, point 4)

In one run, interleaved round by round so that load on the machine falls on all alike: bare
``python -c pass``, ``amparo --version``, ``amparo --help``, ``amparo hash one.jpg`` (a
synthetic gradient JPEG this script makes), and python-threatexchange's CLI (``threatexchange
--help`` and ``threatexchange hash photo one.jpg``), each as a fresh process, with the
median and fastest wall time and the peak RSS of each. Targets: ``amparo --version`` at most
4x bare Python start-up, ``amparo hash one.jpg`` at most 0.3 s over it.

Bytecode is compiled once before timing, into a private cache (``PYTHONPYCACHEPREFIX``), as
an installed package has it; a checkout run with ``PYTHONDONTWRITEBYTECODE=1`` would
otherwise recompile amparo's modules on every call. ``--baseline-src DIR`` adds the same
amparo rows for another source tree (``git archive COMMIT src | tar -x -C DIR``), e.g. the
code before the lazy imports.

    python benchmarks/cli_startup.py [--runs 15] [--baseline-src DIR/src] [--write-docs]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SECTION = "## CLI start-up (issue #18)"
VERSION_FACTOR = 4.0
HASH_OVER_S = 0.3


@dataclass
class Case:
    label: str
    argv: list[str]
    env: dict[str, str]
    times: list[float]
    cpu: list[float]
    rss_mib: list[float]
    codes: set[int]


def script(name: str, module: str) -> list[str]:
    """The installed console script next to this Python, else the module's ``main()``."""
    found = Path(sys.executable).parent / name
    if found.exists():
        return [str(found)]
    return [sys.executable, "-c", f"from {module} import main; main()"]


# Starts one command and reports its wall time, peak RSS and exit code. It runs in a bare
# interpreter (-S -I, no site, nothing imported) because Linux counts the spawning process's
# memory into the child's peak RSS (the child runs in the parent's memory until it execs).
RUNNER = """
import os, sys, time
null = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)]
start = time.perf_counter()
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=null)
_, status, usage = os.wait4(pid, 0)
elapsed = time.perf_counter() - start
cpu = usage.ru_utime + usage.ru_stime
print(elapsed, cpu, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run_once(case: Case, cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-S", "-I", "-c", RUNNER, *case.argv],
        cwd=cwd,
        env=case.env,
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed, cpu, max_rss_kib, code = done.stdout.split()
    case.times.append(float(elapsed))
    case.cpu.append(float(cpu))
    case.rss_mib.append(int(max_rss_kib) / 1024)
    case.codes.add(int(code))


PHOTO = """
import sys
import numpy as np
from PIL import Image
y, x = np.mgrid[0:480, 0:640]
rgb = np.stack([x * 255 // 639, y * 255 // 479, (x + y) % 97 * 2], axis=-1)
Image.fromarray(rgb.astype(np.uint8)).save(sys.argv[1], quality=90)
"""


def make_photo(path: Path) -> None:
    """A benign synthetic picture: smooth gradients plus a little texture (no real image).
    Made in a child process, so that this one stays small (see RUNNER)."""
    subprocess.run([sys.executable, "-c", PHOTO, str(path)], check=True)


def build_cases(work: Path, photo: Path, baseline: Path | None) -> list[Case]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    env["HOME"] = str(work / "home")  # threatexchange keeps its state under ~/.threatexchange
    amparo = script("amparo", "amparo.cli.main")
    tx = script("threatexchange", "threatexchange.cli.main")
    rows: list[tuple[str, list[str], dict[str, str]]] = [
        ("python -c pass", [sys.executable, "-c", "pass"], env),
        ("amparo --version", [*amparo, "--version"], env),
        ("amparo --help", [*amparo, "--help"], env),
        ("amparo hash one.jpg", [*amparo, "hash", str(photo)], env),
        ("threatexchange --help", [*tx, "--help"], env),
        ("threatexchange hash photo one.jpg", [*tx, "hash", "photo", str(photo)], env),
    ]
    if baseline is not None:
        old = dict(env, PYTHONPATH=os.pathsep.join([str(baseline), env.get("PYTHONPATH", "")]))
        rows += [
            ("baseline: amparo --version", [*amparo, "--version"], old),
            ("baseline: amparo --help", [*amparo, "--help"], old),
            ("baseline: amparo hash one.jpg", [*amparo, "hash", str(photo)], old),
        ]
    return [Case(label, argv, e, [], [], [], set()) for label, argv, e in rows]


def markdown(cases: list[Case], runs: int, load: tuple[float, float, float]) -> str:
    by = {c.label: c for c in cases}
    bare = statistics.median(by["python -c pass"].times)
    version = statistics.median(by["amparo --version"].times)
    hashed = statistics.median(by["amparo hash one.jpg"].times)
    lines = [
        SECTION,
        "",
        f"`python benchmarks/cli_startup.py --runs {runs}` on {dt.date.today().isoformat()}: "
        f"{os.cpu_count()}-core {platform.machine()}, Python {platform.python_version()}, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) at the "
        "start. "
        f"Each command ran {runs} times as a new process (after two untimed rounds that also "
        "compile the bytecode), the commands interleaved round by round.",
        "",
        "| command | median | fastest | x bare Python | over bare Python | CPU time (median) "
        "| peak RSS | exit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        med = statistics.median(c.times)
        lines.append(
            f"| `{c.label}` | {med * 1000:.0f} ms | {min(c.times) * 1000:.0f} ms | "
            f"{med / bare:.1f}x | {(med - bare) * 1000:+.0f} ms | "
            f"{statistics.median(c.cpu) * 1000:.0f} ms | "
            f"{statistics.median(c.rss_mib):.0f} MiB | {','.join(map(str, sorted(c.codes)))} |"
        )
    if load[0] > 1.5:
        lines += [
            "",
            "**Other jobs shared the cores during this run** (load average above): every figure "
            "is slower than on a quiet machine, the heavier commands the most; CPU time (user + "
            "system, of the command's process) is the figure load changes least. Re-run "
            "quietly with the command above.",
        ]
    version_ok = version <= VERSION_FACTOR * bare
    hash_ok = hashed - bare <= HASH_OVER_S
    lines += [
        "",
        f"- `amparo --version`: {version / bare:.1f}x bare Python (target at most "
        f"{VERSION_FACTOR:.0f}x): **{'met' if version_ok else 'not met'}**.",
        f"- `amparo hash one.jpg`: {(hashed - bare) * 1000:.0f} ms over bare Python (target at "
        f"most {HASH_OVER_S * 1000:.0f} ms): **{'met' if hash_ok else 'not met'}**.",
        "",
        "What each loads: `amparo --version` alone is answered by `amparo.cli.main` before "
        "Typer is imported; `--help` imports Typer and Rich and lists the sub-commands from "
        "the table in `amparo.cli.commands` without importing any of them; `hash` imports "
        "Typer (which imports pydantic to coerce parameter values), numpy, Pillow, pdqhash "
        "and `amparo.hashing`, and PyAV only for a video. None of them imports SQLAlchemy, "
        "FastAPI, Starlette, numba or the app (`tests/unit/test_cli_lazy.py` checks). "
        "Rows marked *baseline* ran the code before the lazy imports (`--baseline-src`), which "
        "imported every command module, and with them the app, first.",
        "",
    ]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command")
    parser.add_argument(
        "--baseline-src", type=Path, help="another amparo src/ to compare (e.g. commit 4158641)"
    )
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOCS.name}")
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="amparo-startup-") as tmp:
        work = Path(tmp)
        (work / "home").mkdir()
        photo = work / "one.jpg"
        make_photo(photo)
        cases = build_cases(work, photo, args.baseline_src)
        for _ in range(2):  # untimed: bytecode compiled, files in the page cache
            for case in cases:
                run_once(case, work)
        for case in cases:
            case.times.clear()
            case.cpu.clear()
            case.rss_mib.clear()
            case.codes.clear()
        for _ in range(args.runs):
            for case in cases:
                run_once(case, work)
    section = markdown(cases, args.runs, load)
    print(section)
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
