"""Federation first sync: how fast a subscriber (B) takes in a publisher's (A) whole feed of N
entries, and B's peak memory while it does.

A is a real `amparo serve` on loopback (SQLite) publishing a bank of N random PDQ hashes; B
runs `amparo exchange fetch` in a child process (the same command an operator runs, or serve's
loop calls), so its peak RSS is the child's own (getrusage). For context, the same N entries
reach B two other ways in the same run: the `file` exchange reading the list from disk, and a
plain `amparo bank import` (the bulk-import ceiling: no exchange bookkeeping, no network).

    python benchmarks/federation_sync.py [--entries 1000000] [--page-size 5000]

Synthetic hashes only (random PDQ). Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))

from test_serve import AMPARO, start

from amparo.app import Amparo
from amparo.banks.model import BankInfo
from amparo.config import load_settings
from amparo.exchanges.model import Collaboration
from amparo.keys import KeyService


def hash_list(n: int, path: Path) -> None:
    rng = np.random.default_rng(7)
    with path.open("w") as out:
        out.write("signal_type,signal,category\n")
        for start_at in range(0, n, 100_000):
            block = rng.integers(0, 256, size=(min(100_000, n - start_at), 32), dtype=np.uint8)
            out.writelines(f"pdq,{bytes(row).hex()},A1\n" for row in block)


def child(home: Path, *args: str) -> tuple[float, float, str]:
    """Run an amparo command; (seconds, peak RSS in MiB, output)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*AMPARO, "--home", str(home), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "AMPARO_LOG_LEVEL": "WARNING", "AMPARO_URL_ALLOWLIST": "127.0.0.1"},
    )
    assert proc.stdout is not None
    output = proc.stdout.read().decode()
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"amparo {' '.join(args)} failed:\n{output}")
    return seconds, usage.ru_maxrss / 1024, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=5000)
    args = parser.parse_args()
    n = args.entries
    root = Path(tempfile.mkdtemp(prefix="amparo-fed-"))
    a_home, b_home = root / "a", root / "b"
    listing = b_home / "lists" / "list.csv"  # where B's `file` exchange may read lists
    listing.parent.mkdir(parents=True)
    hash_list(n, listing)
    with Amparo(load_settings(env={}, overrides={"home": a_home})) as a:
        token = KeyService(a.store).create("hotline-b", ["partner"], actor="bench").secret
        a.banks.create(BankInfo(name="verified"))
        t0 = time.perf_counter()
        with listing.open() as f:
            a.banks.import_entries("verified", f, "csv")
        a_import = time.perf_counter() - t0
        a.feeds.publish("shared", "verified", actor="bench")
        a.feeds.grant("shared", "hotline-b", actor="bench")
        public_key = a.feeds.public_key()
    (b_home / "secrets").mkdir(parents=True)
    (b_home / "secrets" / "token").write_text(token)
    proc, base = start(a_home, env={"AMPARO_LOG_LEVEL": "WARNING"})
    rows = []
    try:
        with Amparo(load_settings(env={}, overrides={"home": b_home})) as b:
            b.exchanges.add(
                Collaboration(
                    name="from-a",
                    exchange="amparo",
                    bank="from-a",
                    settings={
                        "url": base,
                        "feed": "shared",
                        "public_key": public_key,
                        "page_size": args.page_size,
                    },
                    credentials=f"file:{b_home / 'secrets' / 'token'}",
                    enabled=False,
                ),
                actor="bench",
            )
            b.exchanges.add(
                Collaboration(
                    name="from-file",
                    exchange="file",
                    bank="from-file",
                    settings={"path": str(listing)},
                    enabled=False,
                ),
                actor="bench",
            )
            b.banks.create(BankInfo(name="imported"))
        for label, command in (
            (
                "feed from A (`amparo` exchange, loopback HTTP, signed pages)",
                ("exchange", "fetch", "from-a"),
            ),
            ("same list from a file (`file` exchange)", ("exchange", "fetch", "from-file")),
            (
                "same list by `amparo bank import` (no exchange)",
                ("bank", "import", "imported", str(listing)),
            ),
        ):
            seconds, rss, _out = child(b_home, *command)
            rows.append(f"| {label} | {n:,} | {seconds:.1f} | {n / seconds:,.0f} | {rss:,.0f} |")
        with Amparo(load_settings(env={}, overrides={"home": b_home})) as b:
            counts = {
                name: b.banks.get(name).entry_count for name in ("from-a", "from-file", "imported")
            }
        assert all(c == n for c in counts.values()), counts
        seconds, rss, _out = child(b_home, "exchange", "fetch", "from-a")
        rows.append(
            f"| feed from A again (nothing new: one empty page) | 0 | {seconds:.1f} | - "
            f"| {rss:,.0f} |"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, SQLite"
    )
    print(f"A's bulk import of the list: {a_import:.1f} s; feed page size {args.page_size:,}\n")
    print("| how B takes in the list | entries | seconds | entries/s | B's peak RSS (MiB) |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
