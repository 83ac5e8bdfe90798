"""Load benchmark of single-hash PDQ lookups against any service: Amparo or Meta's HMA.

Point it at a running service (``--target http://host:port``) or let it start Amparo
itself (no ``--target``: a temporary home, the hash list loaded into bank ``bench``,
``amparo serve --workers N``). Routes:

- ``hma``: ``GET /m/raw_lookup?signal_type=pdq&signal=HEX``, as HMA 2.x (Open Media Match)
  serves it and Amparo's HMA-compatible API answers it: ``{"matches": [content ids]}``.
- ``v1``: Amparo's ``GET /v1/lookup?signal_type=pdq&signal=HEX``:
  ``{"matches": [{"bank", "entry_id", "band", "category", ...}], "actions": []}``.

The hash list (``--hashes FILE``, one 64-hex PDQ a line) is written when absent
(``--entries`` random hashes) so the same list can be loaded into a peer
(``benchmarks/hma_load_bank.py`` for HMA). The queries (``--query-file``, written when
absent) are ``--distinct`` request paths: a share (``--planted``) are stored hashes with 0 to
``--max-bits`` bits flipped, the rest random hashes (which match nothing at threshold 31).
wrk (``benchmarks/lookup_load.lua``) cycles through them over ``--connections`` keep-alive
connections for ``--duration`` seconds; without wrk an asyncio client does it.

Before the load, ``--check`` of the queries are sent one at a time and their answers compared
with a brute-force scan of the hash list (content ids = line numbers, 1-based, as both
Amparo's fresh bank and ``hma_load_bank.py`` assign them; ``--check-ids count`` compares only
how many matched, for a peer loaded otherwise). Worker RSS is sampled each second when the
server runs on this machine (Amparo started here, or ``--server-pid`` of a peer's master).

    python benchmarks/lookup_load.py --hashes /tmp/h.txt --route hma --workers 2
    python benchmarks/lookup_load.py --hashes /tmp/h.txt --route v1 --workers 2
    python benchmarks/lookup_load.py --hashes /tmp/h.txt --route hma \\
        --target http://127.0.0.1:5100 --server-pid "$(cat /tmp/gunicorn.pid)"

Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from service_load import Phase, build_bank, free_port, random_hashes, rss_kib

LUA = Path(__file__).with_name("lookup_load.lua")
ENTRY_IDS: list[int] = []  # line -> entry id of the Amparo started here
HOMES: list[Path] = []  # its temporary home, removed at the end
ROUTES = {"hma": "/m/raw_lookup", "v1": "/v1/lookup"}


def load_hashes(path: Path, entries: int) -> list[str]:
    """The hash list at ``path``; written first (``entries`` random hashes) when absent."""
    if not path.exists():
        path.write_text("\n".join(random_hashes(entries)) + "\n")
    return [line.strip().lower() for line in path.read_text().splitlines() if line.strip()]


def make_queries(hexes: list[str], distinct: int, planted: float, max_bits: int) -> list[str]:
    """``distinct`` query hashes in random order: ``planted`` of them stored hashes with 0 to
    ``max_bits`` distinct bits flipped, the rest random."""
    rng = random.Random(11)
    queries: set[str] = set()
    n_planted = round(distinct * planted)
    while len(queries) < n_planted:
        value = int(rng.choice(hexes), 16)
        for bit in rng.sample(range(256), rng.randint(0, max_bits)):
            value ^= 1 << bit
        queries.add(f"{value:064x}")
    while len(queries) < distinct:
        queries.add(f"{rng.getrandbits(256):064x}")
    out = sorted(queries)
    rng.shuffle(out)
    return out


def load_queries(path: Path, hexes: list[str], args: argparse.Namespace) -> list[str]:
    if not path.exists():
        queries = make_queries(hexes, args.distinct, args.planted, args.max_bits)
        path.write_text("\n".join(queries) + "\n")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def request_path(route: str, signal: str) -> str:
    return f"{ROUTES[route]}?signal_type=pdq&signal={signal}"


def brute_force(
    bank: np.ndarray, query: str, threshold: int, ids: list[int] | None = None
) -> set[int]:
    """Ids of the hashes within ``threshold`` bits of ``query``: ``ids[line]``, or the line
    numbers (1-based)."""
    q = np.frombuffer(bytes.fromhex(query), dtype=np.uint64)
    distances = np.bitwise_count(bank ^ q).sum(axis=1)
    lines = np.flatnonzero(distances <= threshold)
    return {ids[i] if ids else int(i) + 1 for i in lines}


def amparo_entry_ids(home: Path, hexes: list[str]) -> list[int]:
    """Each hash's entry id in an Amparo home's SQLite store (ids follow no line order)."""
    import sqlite3

    with sqlite3.connect(home / "amparo.db") as db:
        by_signal = dict(db.execute("SELECT signal, id FROM bank_entries"))
    return [int(by_signal[h]) for h in hexes]


def answer_ids(route: str, body: dict[str, object]) -> set[int]:
    matches = body["matches"]
    assert isinstance(matches, list)
    if route == "hma":
        return {int(m) for m in matches}
    return {int(m["entry_id"]) for m in matches}


def check_answers(
    base: str, route: str, headers: dict[str, str], hexes: list[str], queries: list[str],
    args: argparse.Namespace, ids: list[int] | None,
) -> dict[str, object]:  # fmt: skip
    """Send ``args.check`` queries one at a time; compare with a brute-force scan."""
    bank = np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint64).reshape(-1, 4)
    sample = random.Random(5).sample(queries, min(args.check, len(queries)))
    wrong: list[dict[str, object]] = []
    hits = 0
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for query in sample:
            response = client.get(request_path(route, query))
            expected = brute_force(bank, query, args.threshold, ids)
            hits += bool(expected)
            got = answer_ids(route, response.json()) if response.status_code == 200 else None
            ok = got is not None and (
                got == expected if args.check_ids == "line" else len(got) == len(expected)
            )
            if not ok and len(wrong) < 5:
                wrong.append({"query": query, "status": response.status_code,
                              "expected": sorted(expected), "got": sorted(got or [])})  # fmt: skip
            elif not ok:
                wrong.append({})
    return {"checked": len(sample), "with_matches": hits, "correct": len(sample) - len(wrong),
            "wrong_examples": [w for w in wrong if w]}  # fmt: skip


def child_pids(parent: int) -> list[int]:
    """Worker processes of a server's master (not multiprocessing's resource tracker)."""
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
    pids = [int(p) for p in out.stdout.split()]
    workers = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            workers.append(pid)
    return workers or [parent]


def connections_by_pid(port: int, pids: list[int]) -> list[int]:
    """Established connections each of ``pids`` holds on ``port`` (from ``ss``; [] without
    it): keep-alive connections stay with the worker that accepted them, so the split
    decides how evenly the workers are loaded."""
    if not pids or shutil.which("ss") is None:
        return []
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [out.count(f"pid={pid},") for pid in pids]


def run_wrk(base: str, paths: list[str], header: str, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "paths").write_text("\n".join(paths) + "\n")
        env = {**os.environ, "LOOKUP_PATHS": str(Path(tmp, "paths")), "LOOKUP_HEADER": header}
        out = subprocess.run(
            ["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{int(args.duration)}s",
             "--timeout", "10s", "-s", str(LUA), base],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
    raw = json.loads([x for x in out.stdout.splitlines() if x.startswith("{")][-1])
    return {
        "requests": raw["requests"],
        "errors": raw["socket_errors"] + raw["status_errors"],
        "per_second": round(raw["requests"] / raw["seconds"], 1),
        "p50_ms": raw["p50_ms"],
        "p99_ms": raw["p99_ms"],
        "max_ms": raw["max_ms"],
    }


async def _connection(
    host: str, port: int, requests: list[bytes], phase: Phase, stop_at: float
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = random.randrange(len(requests))
    try:
        while time.perf_counter() < stop_at:
            i = (i + 1) % len(requests)
            start = time.perf_counter()
            writer.write(requests[i])
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            phase.latencies.append(time.perf_counter() - start)
            phase.errors += not status.startswith(b"HTTP/1.1 200")
    finally:
        writer.close()


def run_asyncio(base: str, paths: list[str], header: str, args: argparse.Namespace) -> dict:
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    extra = f"{header}\r\n" if header else ""
    requests = [
        f"GET {p} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode() for p in paths
    ]  # fmt: skip
    phase = Phase("lookup")

    async def drive() -> None:
        start = time.perf_counter()
        stop_at = start + args.duration
        await asyncio.gather(
            *(_connection(host, port, requests, phase, stop_at) for _ in range(args.connections))
        )
        phase.seconds = time.perf_counter() - start

    asyncio.run(drive())
    return phase.summary()


# ``amparo serve`` with uvicorn's worker health-check timeout raised: uvicorn kills (and
# respawns, forever) a worker that does not answer its supervisor's ping within 5 s, and on a
# busy 2-core machine a worker's warm-up (index faulted in, kernels loaded) can take longer.
SERVE = (
    "import functools, sys, uvicorn; "
    "uvicorn.run = functools.partial(uvicorn.run, timeout_worker_healthcheck={t}); "
    "sys.argv[0] = 'amparo'; from amparo.cli.main import main; main()"
)


def start_amparo(
    hexes: list[str], workers: int, healthcheck_s: int
) -> tuple[subprocess.Popen[bytes], str, str]:
    """``amparo serve`` on a fresh home holding ``hexes``; the process, base URL and key."""
    home = Path(tempfile.mkdtemp(prefix="amparo-lookup-"))
    key, _ = build_bank(home, len(hexes), hexes)
    ENTRY_IDS.extend(amparo_entry_ids(home, hexes))
    HOMES.append(home)
    port = free_port()
    log = (home / "serve.log").open("wb")
    print(f"amparo serve log: {home / 'serve.log'}", file=sys.stderr)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE.format(t=healthcheck_s), "--home", str(home), "serve",
         "--port", str(port), "--workers", str(workers)],
        env={**os.environ, "AMPARO_INDEX_MAX_AGE_SECONDS": "600"},
        stdout=log, stderr=log,
    )  # fmt: skip
    return server, f"http://127.0.0.1:{port}", key


def wait_ready(
    base: str, path: str, headers: dict[str, str], timeout: float = 600, in_a_row: int = 10
) -> float:
    """Seconds until ``path`` answered 200 ``in_a_row`` times, each on a new connection: each
    worker of a multi-worker server answers for itself (Amparo's /readyz waits for the
    worker's entry table too), and a new connection lands on any of them, so several in a
    row make it likely that every worker is warm before the load starts. A worker still
    warming up is slow to accept, and the other then takes every keep-alive connection."""
    start = time.perf_counter()
    streak = 0
    while time.perf_counter() - start < timeout:
        try:
            ok = httpx.get(base + path, headers=headers, timeout=60).status_code == 200
        except httpx.HTTPError:
            ok = False
        streak = streak + 1 if ok else 0
        if streak >= in_a_row:
            return time.perf_counter() - start
        time.sleep(0.2 if ok else 0.5)
    raise SystemExit(f"{base}{path} not ready after {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", help="base URL of a running service; none = start Amparo")
    parser.add_argument("--route", choices=sorted(ROUTES), nargs="+", default=["hma"],
                        help="one run per route, one after the other")  # fmt: skip
    parser.add_argument("--hashes", type=Path, required=True, help="hash list (written if absent)")
    parser.add_argument("--entries", type=int, default=1_000_000, help="when writing --hashes")
    parser.add_argument("--query-file", type=Path, help="queries (written if absent)")
    parser.add_argument("--distinct", type=int, default=100_000, help="distinct queries")
    parser.add_argument("--planted", type=float, default=0.5, help="share near stored hashes")
    parser.add_argument("--max-bits", type=int, default=10, help="bits flipped in planted ones")
    parser.add_argument("--api-key", help="sent as --key-header (Amparo started here: its own)")
    parser.add_argument("--key-header", default="X-API-Key")
    parser.add_argument("--ready-path", help="polled until 200 (default /readyz, HMA /status)")
    parser.add_argument("--workers", type=int, default=2, help="Amparo started here")
    parser.add_argument("--healthcheck-timeout", type=int, default=120, help="see SERVE")
    parser.add_argument("--server-pid", type=int, help="a local peer's master: sample its RSS")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60, help="seconds of load")
    parser.add_argument("--client", choices=["wrk", "python"], default="wrk")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--check", type=int, default=500, help="answers checked, brute force")
    parser.add_argument("--check-ids", choices=["line", "count"], default="line")
    parser.add_argument("--threshold", type=int, default=31, help="PDQ distance for the check")
    parser.add_argument("--label", default="", help="free text copied into the summary")
    args = parser.parse_args()
    if args.client == "wrk" and shutil.which("wrk") is None:
        parser.error("--client wrk needs wrk on PATH (Debian: apt-get install wrk)")

    hexes = load_hashes(args.hashes, args.entries)
    query_file = args.query_file or args.hashes.with_suffix(f".queries-{args.distinct}.txt")
    queries = load_queries(query_file, hexes, args)
    server = None
    key = args.api_key
    base = args.target.rstrip("/") if args.target else ""
    if not base:
        server, base, key = start_amparo(hexes, args.workers, args.healthcheck_timeout)
    headers = {args.key_header: key} if key else {}
    ready_path = args.ready_path or ("/readyz" if server or "v1" in args.route else "/status")
    try:
        ready_s = wait_ready(base, ready_path, headers)
        master = server.pid if server else args.server_pid
        pids = child_pids(master) if master else []
        for route in args.route:
            summary = one_route(base, route, headers, key, hexes, queries, pids, args)
            summary["ready_after_s"] = round(ready_s, 1)
            print(json.dumps(summary, indent=2), flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
            for home in HOMES:
                shutil.rmtree(home, ignore_errors=True)


def one_route(
    base: str, route: str, headers: dict[str, str], key: str | None, hexes: list[str],
    queries: list[str], pids: list[int], args: argparse.Namespace,
) -> dict[str, object]:  # fmt: skip
    """Check a sample of answers, then drive ``route`` for ``args.duration`` seconds."""
    load_before = os.getloadavg()
    correctness = check_answers(base, route, headers, hexes, queries, args, ENTRY_IDS or None)
    memory: list[list[int]] = []
    split: list[int] = []
    stop = threading.Event()
    port = urlsplit(base).port or 80

    def sample() -> None:
        while not stop.is_set():
            memory.append([rss_kib(p) for p in pids])
            if len(memory) == 5:  # the load's connections are open by now
                split.extend(connections_by_pid(port, pids))
            stop.wait(1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    paths = [request_path(route, q) for q in queries]
    header = f"{args.key_header}: {key}" if key else ""
    run = run_wrk if args.client == "wrk" else run_asyncio
    try:
        result = run(base, paths, header, args)
    finally:
        stop.set()
        sampler.join()
    mem = np.array(memory, dtype=float) / 1024 if memory and pids else None
    return {
        "label": args.label,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_average_before_after": [round(x, 2) for x in (load_before[0], os.getloadavg()[0])],
        "target": args.target or f"amparo serve --workers {args.workers} (started here)",
        "route": ROUTES[route],
        "hashes": len(hexes),
        "distinct_queries": len(queries),
        "connections": args.connections,
        "duration_s": args.duration,
        "client": args.client,
        "lookups": result,
        "connections_per_worker": split,
        "correctness": correctness,
        "worker_rss_mib": None if mem is None else {
            "start": [round(x) for x in mem[0]],
            "max": [round(x) for x in mem.max(axis=0)],
            "end": [round(x) for x in mem[-1]],
        },
    }  # fmt: skip


if __name__ == "__main__":
    main()
