"""The PDQ index at 100 million hashes (issue #19): build, file size, open, queries, RSS.

Phases run in separate processes, so each one's memory is its own:

* ``build``: ``n`` random PDQ hashes (seeded; ids 1..n, as a bulk import numbers them) built
  with :meth:`SegmentedPdqIndex.bulk_build` into ``DIR`` (the path the service's rebuild takes
  with one build instead of two), timed, with the process's peak RSS;
* ``query``: a fresh process opens ``DIR`` (the worker's view), warms it, then times single
  queries (p50/p99), a batch, and checks planted near-duplicates against a numpy brute
  force over the mapped hashes; RSS (anonymous and file-backed) after each step;
* ``import``: ``amparo bank import`` of a generated CSV of ``n`` hashes into SQLite in a
  temporary home, then the index built by the application (``amparo index rebuild``), then
  the ``query`` phase on that index in a fresh process; each step timed with its own peak RSS
  and the load average (``--steps`` runs some of them; each waits while a ``lookup_load``
  benchmark runs); the ``serve`` step starts ``amparo serve --workers 2`` on that home and
  measures start-up, each worker's memory and ``lookup_load.py`` against it.

    .venv/bin/python benchmarks/index_100m.py --n 100000000 --dir /work/tmp/idx100m --out F
    .venv/bin/python benchmarks/index_100m.py --n 1000000 --dir /tmp/idx1m   # quick run
    .venv/bin/python benchmarks/index_100m.py --phase import --n 10000000 --home H --dir unused

Only random, synthetic hashes are used.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from amparo.index import SegmentedPdqIndex
from amparo.index.pdq_segment import BATCH_MIN_QUERIES

RADIUS = 31
PLANTED = (0, 8, 16, 24, 31)
PLANTED_EACH = 4
SINGLE = 200
BATCH = 20_000
SEED = 19
_GEN_CHUNK = 10_000_000


def memory() -> dict[str, int]:
    """This process's resident memory by kind, in MB (from /proc/self/status)."""
    out: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024
    return out


def random_hashes(n: int) -> NDArray[np.uint8]:
    rng = np.random.default_rng(SEED)
    out = np.empty((n, 32), dtype=np.uint8)
    for a in range(0, n, _GEN_CHUNK):
        b = min(n, a + _GEN_CHUNK)
        out[a:b] = rng.integers(0, 256, (b - a, 32), dtype=np.uint8)
    return out


def build(n: int, directory: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    hashes = random_hashes(n)
    ids = np.arange(1, n + 1, dtype=np.int64)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = SegmentedPdqIndex.bulk_build(directory, ids, hashes, checkpoint=1)
    build_s = time.perf_counter() - t0
    size = index.stats().bytes_on_disk
    return {
        "n": n,
        "generate_s": round(gen_s, 1),
        "build_and_write_s": round(build_s, 1),
        "file_bytes": size,
        "bytes_per_hash": round(size / n, 1),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "chunks": index._state.segments[0].chunks,
    }


def brute(words: NDArray[np.uint64], query: NDArray[np.uint64]) -> set[int]:
    """Rows within RADIUS of ``query`` by a numpy pass over every row."""
    found: set[int] = set()
    for a in range(0, words.shape[0], _GEN_CHUNK):
        d = np.bitwise_count(words[a : a + _GEN_CHUNK] ^ query).sum(axis=1, dtype=np.int64)
        found.update((np.flatnonzero(d <= RADIUS) + a).tolist())
    return found


def query(directory: Path, *, check: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"rss_start_mb": memory()}
    t0 = time.perf_counter()
    index = SegmentedPdqIndex.open(directory)
    out["open_s"] = round(time.perf_counter() - t0, 4)
    out["rss_after_open_mb"] = memory()
    t0 = time.perf_counter()
    index.warm()
    out["warm_s"] = round(time.perf_counter() - t0, 1)
    out["rss_after_warm_mb"] = memory()
    segment = index._state.segments[0]
    n = len(segment)
    rng = np.random.default_rng(SEED + 1)
    # Planted near-duplicates of stored rows, at fixed distances.
    rows = rng.integers(0, n, len(PLANTED) * PLANTED_EACH)
    planted = np.array(segment.hashes[rows])
    for i, row_dist in enumerate(np.repeat(PLANTED, PLANTED_EACH)):
        for bit in rng.choice(256, size=int(row_dist), replace=False):
            planted[i, bit // 8] ^= np.uint8(1 << (bit % 8))
    singles = np.concatenate(
        [planted, rng.integers(0, 256, (SINGLE - len(planted), 32), dtype=np.uint8)]
    )
    index.search(singles[:10], RADIUS)
    times = []
    for q in singles:
        t0 = time.perf_counter()
        index.search(q[None, :], RADIUS)
        times.append(time.perf_counter() - t0)
    out["single_p50_ms"] = round(1000 * float(np.percentile(times, 50)), 3)
    out["single_p99_ms"] = round(1000 * float(np.percentile(times, 99)), 3)
    batch = rng.integers(0, 256, (BATCH, 32), dtype=np.uint8)
    batch[: len(planted)] = planted
    # Untimed: compiles (or loads) the batched kernel that large batches take.
    index.search(rng.integers(0, 256, (BATCH_MIN_QUERIES, 32), dtype=np.uint8), RADIUS)
    t0 = time.perf_counter()
    hits = index.search(batch, RADIUS)
    out["batch_qps"] = round(BATCH / (time.perf_counter() - t0))
    out["batch_hits"] = len(hits.ids)
    out["rss_after_queries_mb"] = memory()
    if not check:
        return out
    # Exactness: the planted queries' hits against a brute force over the mapped hashes.
    words = segment._words
    found = index.search(planted, RADIUS)
    recall = []
    same = True
    for i in range(len(planted)):
        q = np.frombuffer(planted[i].tobytes(), dtype="<u8")
        near = np.array(sorted(brute(words, q)), dtype=np.int64)
        expected = set(segment.ids_at(near).tolist())
        got = set(found.ids[found.query == i].tolist())
        same &= got == expected
        recall.append(int(rows[i]) + 1 in got)
    out["planted_recall"] = sum(recall) / len(recall)
    out["same_hits_as_brute"] = bool(same)
    return out


def write_list(path: Path, n: int) -> None:
    """A csv hash list of ``n`` random PDQ hashes (header ``signal_type,signal``)."""
    rng = np.random.default_rng(SEED + 2)
    with path.open("wb") as fh:
        fh.write(b"signal_type,signal\n")
        for a in range(0, n, 1_000_000):
            raw = rng.integers(0, 256, (min(n, a + 1_000_000) - a, 32), dtype=np.uint8)
            hexed = np.frombuffer(raw.tobytes().hex().encode(), dtype="S64")
            fh.write(b"".join(b"pdq," + h + b"\n" for h in hexed.tolist()))


def wait_quiet() -> float:
    """Wait while another session's throughput benchmark (``lookup_load``) runs; seconds."""
    waited = 0.0
    while subprocess.run(["pgrep", "-f", "lookup_load"], capture_output=True).returncode == 0:
        time.sleep(15)
        waited += 15
    return waited


def timed(argv: list[str]) -> dict[str, Any]:
    """Run ``argv`` in its own process: wall time, its own peak RSS, load averages, status."""
    waited = wait_quiet()
    load = os.getloadavg()
    free_start = shutil.disk_usage(Path.cwd()).free
    lowest = [free_start]
    done = threading.Event()

    def sample_disk() -> None:  # the run's peak use of the disk (database, WAL, temp files)
        while not done.wait(2.0):
            lowest[0] = min(lowest[0], shutil.disk_usage(Path.cwd()).free)

    sampler = threading.Thread(target=sample_disk, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert child.stdout is not None
    text = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    return {
        "disk_peak_gb": round((free_start - lowest[0]) / 1e9, 1),
        "rc": child.returncode,
        "wall_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": usage.ru_maxrss // 1024,
        "load_start": load,
        "load_end": os.getloadavg(),
        "waited_for_quiet_s": waited,
        "tail": text[-600:],
    }


def amparo_cli(home: Path, *argv: str) -> dict[str, Any]:
    """Run the ``amparo`` CLI in its own process (see :func:`timed`)."""
    code = "import sys; from amparo.cli.main import main; sys.argv[0] = 'amparo'; main()"
    run = timed([sys.executable, "-c", code, "--home", str(home), *argv])
    return {"argv": " ".join(["amparo", "--home", str(home), *argv]), **run}


IMPORT_STEPS = ("list", "import", "rebuild", "status", "query", "catchup", "serve")
SERVE_SUBSET = 1_000_000
"""The serve step plants its queries near the list's first million hashes."""


def catch_up_all(home: Path) -> dict[str, Any]:
    """A service whose indexes predate the whole import: empty indexes at change-log position
    0 (in ``home/catchup-index``), opened, then :meth:`SignalIndexes.catch_up` over the whole
    change log (read in pages into arrays; the delta is then built in memory)."""
    from amparo import Amparo, load_settings
    from amparo.index import SegmentedDigestTable
    from amparo.indexing import DIGESTS, SignalIndexes

    amparo = Amparo(load_settings(env={}, overrides={"home": home}))
    store = amparo.store
    root = home / "catchup-index"
    directory = root / f"{store.installation_id:016x}"
    empty = np.zeros(0, dtype=np.int64)
    SegmentedPdqIndex.bulk_build(directory / "pdq", empty, np.zeros((0, 32), np.uint8))
    for kind in DIGESTS:
        SegmentedDigestTable(kind).compact(directory / kind)
    t0 = time.perf_counter()
    indexes = SignalIndexes(store, root)
    out: dict[str, Any] = {"open_s": round(time.perf_counter() - t0, 2)}
    t0 = time.perf_counter()
    out["applied"] = indexes.catch_up()
    out["catch_up_s"] = round(time.perf_counter() - t0, 1)
    out["pdq_delta_entries"] = indexes.pdq.stats().delta_entries
    out["rss_mb"] = memory()
    amparo.close()
    return out


def worker_memory(master: int) -> list[dict[str, int]]:
    """Each worker's RSS, PSS (the shared index map counted once across processes) and
    anonymous memory, MB, from /proc/PID/smaps_rollup."""
    out = []
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    for pid in children:
        row = {"pid": int(pid)}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("Rss", "Pss", "Anonymous"):
                row[key.lower() + "_mb"] = int(value.split()[0]) // 1024
        out.append(row)
    return out


def serve_lookups(home: Path, duration: float) -> dict[str, Any]:
    """``amparo serve --workers 2`` on the imported home: seconds until /readyz answers 200
    (each worker maps the index and loads its entry table), each worker's memory, then
    ``lookup_load.py`` against it on both routes (queries near the list's first million
    hashes; answers not brute-force checked at this size)."""
    import httpx

    sys.path.insert(0, str(Path(__file__).parent))
    from service_load import free_port

    subset = home / "subset.txt"
    rng = np.random.default_rng(SEED + 2)  # write_list's stream: its first million hashes
    raw = rng.integers(0, 256, (SERVE_SUBSET, 32), dtype=np.uint8)
    subset.write_text("".join(row.tobytes().hex() + "\n" for row in raw))
    code = "import sys; from amparo.cli.main import main; sys.argv[0] = 'amparo'; main()"
    amparo = [sys.executable, "-c", code, "--home", str(home)]
    key = subprocess.run(
        [
            *amparo,
            "keys",
            "create",
            f"bench-{os.getpid()}",
            "--scope",
            "matcher",
            "--rate",
            "1000000",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    log = (home / "serve.log").open("w")
    server = subprocess.Popen(
        [*amparo, "serve", "--workers", "2", "--port", str(port)], stdout=log, stderr=log
    )
    out: dict[str, Any] = {"load_start": os.getloadavg()}
    auth = {"X-API-Key": key}
    try:
        t0 = time.perf_counter()
        while True:
            try:
                if (
                    httpx.get(
                        f"http://127.0.0.1:{port}/readyz", headers=auth, timeout=5
                    ).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.perf_counter() - t0 > 3600:
                raise SystemExit(f"amparo serve did not become ready: see {home / 'serve.log'}")
            time.sleep(2)
        out["ready_s"] = round(time.perf_counter() - t0, 1)
        out["workers_ready"] = worker_memory(server.pid)
        argv = [
            sys.executable,
            str(Path(__file__).with_name("lookup_load.py")),
            "--target",
            f"http://127.0.0.1:{port}",
            "--route",
            "hma",
            "v1",
            "--hashes",
            str(subset),
            "--check",
            "0",
            "--duration",
            str(duration),
            "--api-key",
            key,
            "--server-pid",
            str(server.pid),
            "--label",
            "100M import",
        ]
        run = subprocess.run(argv, capture_output=True, text=True)
        out["lookup_load_rc"] = run.returncode
        out["lookup_load"] = run.stdout[-6000:] + run.stderr[-2000:]
        out["workers_after"] = worker_memory(server.pid)
    finally:
        server.terminate()
        server.wait(60)
        log.close()
    out["load_end"] = os.getloadavg()
    return out


def bulk_import(n: int, home: Path, steps: tuple[str, ...], duration: float = 30) -> dict[str, Any]:
    """Import a generated list of ``n`` hashes into SQLite, let the app build the index, then
    open and query it in a fresh process; ``steps`` picks which of :data:`IMPORT_STEPS` run
    (the home is kept between runs, so steps can be run one at a time)."""
    home.mkdir(parents=True, exist_ok=True)
    listing = home / "list.csv"
    out: dict[str, Any] = {"n": n}
    if "list" in steps:
        t0 = time.perf_counter()
        write_list(listing, n)
        out["generate_s"] = round(time.perf_counter() - t0, 1)
        out["csv_bytes"] = listing.stat().st_size
    if "import" in steps:
        out["import"] = amparo_cli(home, "bank", "import", "known", str(listing), "--create")
        out["db_bytes"] = sum(p.stat().st_size for p in home.glob("amparo.db*"))
        listing.unlink()
    if "rebuild" in steps:
        out["rebuild"] = amparo_cli(home, "index", "rebuild")
    if "status" in steps:
        out["status"] = amparo_cli(home, "index", "status", "--json")
    if "query" in steps:
        (pdq,) = home.glob("index/*/pdq")
        out["index_bytes"] = sum(p.stat().st_size for p in pdq.iterdir())
        run = timed(
            [sys.executable, __file__, "--phase", "query", "--n", str(n), "--dir", str(pdq)]
        )
        result = json.loads(str(run.pop("tail")).strip().splitlines()[-1])
        out["query"] = {**run, "result": result}
    if "catchup" in steps:
        argv = [sys.executable, __file__, "--phase", "catchup", "--home", str(home), "--dir", "-"]
        run = timed(argv)
        result = json.loads(str(run.pop("tail")).strip().splitlines()[-1])
        out["catchup"] = {**run, "result": result}
    if "serve" in steps:
        out["serve"] = serve_lookups(home, duration)
    out["db_bytes_now"] = sum(p.stat().st_size for p in home.glob("amparo.db*"))
    return out


def run_phase(phase: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--phase", phase, "--n", str(args.n), "--dir", str(args.dir)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000_000)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument(
        "--phase", choices=["build", "query", "all", "import", "catchup"], default="all"
    )
    parser.add_argument("--home", type=Path, help="import phase: the temporary Amparo home")
    parser.add_argument(
        "--steps",
        default=",".join(IMPORT_STEPS),
        help=f"import phase: which of {','.join(IMPORT_STEPS)} to run (default all)",
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--duration", type=float, default=30, help="serve step: seconds a route")
    parser.add_argument(
        "--no-check", action="store_true", help="query phase: skip the brute-force comparison"
    )
    args = parser.parse_args()
    if args.phase == "build":
        print(json.dumps(build(args.n, args.dir)))
        return
    if args.phase == "query":
        print(json.dumps(query(args.dir, check=not args.no_check)))
        return
    if args.phase == "catchup":
        print(json.dumps(catch_up_all(args.home)))
        return
    if args.phase == "import":
        start = os.getloadavg()
        result = {
            "load_start": start,
            **bulk_import(args.n, args.home, tuple(args.steps.split(",")), args.duration),
            "load_end": os.getloadavg(),
        }
        print(json.dumps(result, indent=2))
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")
        return
    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"{platform.platform()}",
        "load_start": os.getloadavg(),
    }
    result["build"] = run_phase("build", args)
    result["load_after_build"] = os.getloadavg()
    result["query"] = run_phase("query", args)
    result["load_end"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
