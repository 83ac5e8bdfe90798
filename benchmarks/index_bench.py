"""Benchmark Amparo's exact PDQ index and digest table against python-threatexchange.

Runs, side by side in one process: Amparo's ``SegmentedPdqIndex`` (built, saved, reopened
from its directory), python-threatexchange's ``PDQIndex`` (FAISS IndexBinaryMultiHash) and
a numpy brute force, on random and clustered (near-duplicate families plus low-entropy
hashes) synthetic data. Only random, synthetic hashes are used.

    .venv/bin/python benchmarks/index_bench.py --sizes 1000000,10000000 --out FILE
    .venv/bin/python benchmarks/index_bench.py --sizes 100000 --no-peer   # quick run
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import pickle  # only to time the peer's own (pickle-based) persistence; Amparo never pickles
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from numpy.typing import NDArray

from amparo.index import BruteForcePdqIndex, SegmentedDigestTable, SegmentedPdqIndex

RADIUS = 31
PLANTED_DISTANCES = (0, 8, 16, 24, 31)
PLANTED_PER_DISTANCE = 20
SINGLE_QUERIES = 200
BATCH_QUERIES = 20_000


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


def flip_exact(rng: np.random.Generator, rows: NDArray[np.uint8], k: int) -> NDArray[np.uint8]:
    out = rows.copy()
    for i in range(len(out)):
        for bit in rng.choice(256, size=k, replace=False):
            out[i, bit // 8] ^= np.uint8(1 << (bit % 8))
    return out


def random_hashes(rng: np.random.Generator, n: int) -> NDArray[np.uint8]:
    return rng.integers(0, 256, (n, 32), dtype=np.uint8)


def clustered_hashes(rng: np.random.Generator, n: int) -> NDArray[np.uint8]:
    """Families of ~100 near-duplicates (about 8 bits from their centre) plus 1% of
    low-entropy hashes (few bits set): the shape of real banks of re-encoded copies."""
    centres = rng.integers(0, 256, (max(1, n // 100), 32), dtype=np.uint8)
    out = centres[rng.integers(0, len(centres), n)]
    step = 1_000_000
    for s in range(0, n, step):
        e = min(n, s + step)
        bits = rng.random((e - s, 256)) < 8 / 256
        out[s:e] ^= np.packbits(bits, axis=1)
    low = rng.choice(n, size=n // 100, replace=False)
    sparse = rng.random((len(low), 256)) < 3 / 256
    out[low] = np.packbits(sparse, axis=1)
    return out


def percentile_ms(times: list[float], p: float) -> float:
    return float(np.percentile(times, p) * 1e3)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


class Contender:
    name = ""

    def build(self, ids: NDArray[np.int64], hashes: NDArray[np.uint8]) -> None:
        raise NotImplementedError

    def reopen(self) -> float | None:
        raise NotImplementedError

    def search(self, queries: NDArray[np.uint8]) -> Any:
        """The matches of each query, in the contender's own form (what is timed)."""
        raise NotImplementedError

    def as_sets(self, found: Any, n: int) -> list[set[int]]:
        """``search``'s answer as one set of entry ids per query (for comparing; not timed)."""
        out: list[set[int]] = [set() for _ in range(n)]
        for q, i in zip(found.query.tolist(), found.ids.tolist(), strict=True):
            out[q].add(i)
        return out

    def close(self) -> None:
        raise NotImplementedError


class Amparo(Contender):
    name = "Amparo SegmentedPdqIndex"

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "amparo-pdq"
        self.index: SegmentedPdqIndex | None = None

    def build(self, ids: NDArray[np.int64], hashes: NDArray[np.uint8]) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        index = SegmentedPdqIndex.open(self.dir, create=True)
        index.apply(ids, hashes, checkpoint=1)
        index.compact()
        self.index = index

    def reopen(self) -> float:
        self.index = None
        gc.collect()
        seconds, self.index = timed(lambda: SegmentedPdqIndex.open(self.dir))
        return seconds

    def search(self, queries: NDArray[np.uint8]) -> Any:
        assert self.index is not None
        return self.index.search(queries, RADIUS)

    def close(self) -> None:
        self.index = None
        shutil.rmtree(self.dir, ignore_errors=True)


class ThreatExchange(Contender):
    name = "threatexchange PDQIndex (FAISS MultiHash 16x16)"

    def __init__(self, measure_open: bool) -> None:
        self.index: Any = None
        self.measure_open = measure_open

    def build(self, ids: NDArray[np.int64], hashes: NDArray[np.uint8]) -> None:
        from threatexchange.signal_type.pdq.pdq_index import PDQIndex

        hexes = [h.tobytes().hex() for h in hashes]
        self.index = PDQIndex(zip(hexes, ids.tolist(), strict=True))

    def reopen(self) -> float | None:
        if not self.measure_open:
            return None
        blob = pickle.dumps(self.index)  # the peer persists its index with pickle
        self.index = None
        gc.collect()
        seconds, self.index = timed(lambda: pickle.loads(blob))
        return seconds

    def search(self, queries: NDArray[np.uint8]) -> Any:
        hexes = [q.tobytes().hex() for q in queries]
        results = self.index.index.search_with_distance_in_result(hexes, RADIUS)
        entries = self.index.local_id_to_entry
        return [[entries[i][1] for i, _, _ in results[h]] for h in hexes]

    def as_sets(self, found: Any, n: int) -> list[set[int]]:
        return [{int(i) for i in ids} for ids in found]

    def close(self) -> None:
        self.index = None


class NumpyBrute(Contender):
    name = "numpy brute force"

    def __init__(self) -> None:
        self.index: BruteForcePdqIndex | None = None

    def build(self, ids: NDArray[np.int64], hashes: NDArray[np.uint8]) -> None:
        self.index = BruteForcePdqIndex()
        self.index.add(ids, hashes)

    def reopen(self) -> float | None:
        return None

    def search(self, queries: NDArray[np.uint8]) -> Any:
        assert self.index is not None
        return self.index.search(queries, RADIUS)

    def close(self) -> None:
        self.index = None


def bench_one(
    contender: Contender,
    ids: NDArray[np.int64],
    hashes: NDArray[np.uint8],
    queries: NDArray[np.uint8],
    planted: list[tuple[int, NDArray[np.uint8], NDArray[np.int64]]],
    batch: int,
    singles: int,
) -> dict[str, Any]:
    gc.collect()
    before = rss()
    build_s, _ = timed(lambda: contender.build(ids, hashes))
    open_s = contender.reopen()
    for q in queries[:3]:
        contender.search(q[None, :])  # warm the caches and the JIT
    # The batch takes other kernels (parallel; the batched one on large segments): compile
    # them outside the timing too (numba caches them on disk, but a changed source file or a
    # fresh install recompiles, and that once cost a run 10x on the batch figure).
    contender.search(queries[:batch])
    times = []
    for q in queries[:singles]:
        start = time.perf_counter()
        contender.search(q[None, :])
        times.append(time.perf_counter() - start)
    batch_s, _ = timed(lambda: contender.search(queries[:batch]))
    recall: dict[int, float] = {}
    answers: list[list[set[int]]] = []
    for d, qs, expect in planted:
        found = contender.as_sets(contender.search(qs), len(qs))
        answers.append(found)
        recall[d] = float(np.mean([int(e) in f for e, f in zip(expect, found, strict=True)]))
    mem = rss() - before
    row = {
        "name": contender.name,
        "build_s": build_s,
        "open_s": open_s,
        "rss_mb": mem / 2**20,
        "p50_ms": percentile_ms(times, 50),
        "p99_ms": percentile_ms(times, 99),
        "qps": batch / batch_s,
        "recall": recall,
        "answers": answers,
    }
    if isinstance(contender, Amparo) and contender.index is not None:
        row["disk_mb"] = contender.index.stats().bytes_on_disk / 2**20
    return row


def adds_visible(workdir: Path, n: int, rng: np.random.Generator) -> float:
    """Seconds from applying 10,000 adds to a saved index until a search sees them."""
    directory = workdir / "amparo-adds"
    index = SegmentedPdqIndex.open(directory, create=True)
    index.apply(np.arange(n), random_hashes(rng, n), checkpoint=1)
    index.compact()
    index = SegmentedPdqIndex.open(directory)
    new = random_hashes(rng, 10_000)
    start = time.perf_counter()
    index.apply(np.arange(n, n + 10_000), new, checkpoint=2)
    hits = index.search(new[-1:], 0)
    elapsed = time.perf_counter() - start
    assert hits.ids.tolist() == [n + 9_999]
    shutil.rmtree(directory, ignore_errors=True)
    return elapsed


def digest_bench(workdir: Path, n: int, rng: np.random.Generator) -> dict[str, float]:
    digests = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    directory = workdir / "amparo-md5"
    table = SegmentedDigestTable.open("md5", directory, create=True)

    def build() -> None:
        table.apply(np.arange(n), digests, checkpoint=1)
        table.compact()

    build_s, _ = timed(build)
    open_s, table = timed(lambda: SegmentedDigestTable.open("md5", directory))
    queries = np.concatenate(
        [digests[rng.integers(0, n, 500_000)], rng.integers(0, 256, (500_000, 16), np.uint8)]
    )
    table.lookup(queries[:10])
    lookup_s, hits = timed(lambda: table.lookup(queries))
    assert len(hits) >= 500_000
    stats = table.stats()
    shutil.rmtree(directory, ignore_errors=True)
    return {
        "entries": n,
        "build_s": build_s,
        "open_s": open_s,
        "lookups_per_s": len(queries) / lookup_s,
        "bytes_per_entry": stats.bytes_on_disk / n,
        "ratio_to_raw": stats.bytes_on_disk / (16 * n),
    }


def machine() -> str:
    model = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    ram = psutil.virtual_memory().total / 2**30
    return f"{model}, {os.cpu_count()} cores, {ram:.0f} GiB RAM, {platform.platform()}"


def fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--datasets", default="random,clustered")
    parser.add_argument("--no-peer", action="store_true", help="skip python-threatexchange")
    parser.add_argument(
        "--peer-open-max",
        type=int,
        default=1_000_000,
        help="time the peer's pickle round-trip only up to this size (it needs RAM)",
    )
    parser.add_argument("--digest-size", type=int, default=10_000_000)
    parser.add_argument("--out", type=Path, default=None, help="write a markdown fragment")
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="amparo-bench-", dir=os.environ.get("BENCH_DIR")))
    load_start = os.getloadavg()
    lines: list[str] = []
    points: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    try:
        header = (
            "| size | data | index | build s | open s | RSS Δ MB | single p50 ms | p99 ms "
            "| batch q/s | recall d=0/8/16/24/31 | same hits as brute |"
        )
        lines += [header, "|" + "---|" * 11]
        for n in sizes:
            for dataset in args.datasets.split(","):
                make = random_hashes if dataset == "random" else clustered_hashes
                hashes = make(rng, n)
                ids = rng.permutation(n).astype(np.int64) + 1_000
                queries = flip_exact(rng, hashes[rng.integers(0, n, 2_000)], 12)
                queries = np.concatenate([queries] * (BATCH_QUERIES // len(queries)))
                planted = []
                for d in PLANTED_DISTANCES:
                    rows = rng.integers(0, n, PLANTED_PER_DISTANCE)
                    planted.append((d, flip_exact(rng, hashes[rows], d), ids[rows]))
                contenders: list[Contender] = [Amparo(workdir)]
                if not args.no_peer:
                    contenders.append(ThreatExchange(measure_open=n <= args.peer_open_max))
                contenders.append(NumpyBrute())
                results = []
                for c in contenders:
                    slow = isinstance(c, NumpyBrute | ThreatExchange)
                    batch = min(BATCH_QUERIES, 50 if isinstance(c, NumpyBrute) else 1_000) if (
                        slow
                    ) else BATCH_QUERIES  # fmt: skip
                    singles = 20 if isinstance(c, NumpyBrute) else SINGLE_QUERIES
                    print(f"[{n:,} {dataset}] {c.name} ...", flush=True)
                    row = bench_one(c, ids, hashes, queries, planted, batch, singles)
                    c.close()
                    gc.collect()
                    results.append(row)
                    points.setdefault((dataset, c.name), []).append((n, row))
                brute_answers = results[-1]["answers"]
                for row in results:
                    same = "yes" if row["answers"] == brute_answers else "NO"
                    rec = "/".join(f"{row['recall'][d]:.2f}" for d in PLANTED_DISTANCES)
                    disk = f" ({row['disk_mb']:.0f} MB file)" if "disk_mb" in row else ""
                    line = (
                        f"| {n:,} | {dataset} | {row['name']}{disk} | {fmt(row['build_s'], 1)} | "
                        f"{fmt(row['open_s'], 3)} | {fmt(row['rss_mb'], 0)} | "
                        f"{fmt(row['p50_ms'], 3)} | {fmt(row['p99_ms'], 3)} | "
                        f"{fmt(row['qps'], 0)} | {rec} | {same} |"
                    )
                    lines.append(line)
                    print(line, flush=True)
                del hashes
                gc.collect()
        visible = adds_visible(workdir, min(sizes[-1], 1_000_000), rng)
        digest = digest_bench(workdir, args.digest_size, rng)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    extra = [
        "",
        f"- 10,000 adds visible to the next search after {visible * 1e3:.0f} ms "
        f"(apply + search, base of {min(sizes[-1], 1_000_000):,} entries).",
        f"- Digest table, {digest['entries']:,} md5 entries: build+save {digest['build_s']:.1f} s, "
        f"open {digest['open_s'] * 1e3:.1f} ms, {digest['lookups_per_s']:,.0f} lookups/s "
        f"(batch of 1M, half hits), {digest['bytes_per_entry']:.1f} bytes an entry on disk "
        f"({digest['ratio_to_raw']:.2f}x the raw digests).",
    ]
    amparo_random = points.get(("random", Amparo.name), [])
    if len(amparo_random) >= 2:
        (n1, r1), (n2, r2) = amparo_random[-2], amparo_random[-1]

        def project(key: str) -> float:
            slope = (r2[key] - r1[key]) / (n2 - n1)
            return float(r2[key] + slope * (100_000_000 - n2))

        extra.append(
            f"- Projection to 100M random hashes (linear in n from the {n1:,} and {n2:,} "
            f"points): file {project('disk_mb') / 1024:.1f} GiB, build "
            f"{project('build_s') / 60:.1f} min, single-query p50 ~{project('p50_ms'):.1f} ms."
        )
    load_end = os.getloadavg()
    doc = [
        "## Index benchmark",
        "",
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. "
        f"Load average at start/end: {load_start[0]:.1f}/{load_end[0]:.1f} "
        "(the machine is shared; other jobs compete for the 2 cores and memory bandwidth).",
        f"Radius {RADIUS}; {PLANTED_PER_DISTANCE} planted queries per distance; single-query "
        f"latency over {SINGLE_QUERIES} queries (20 for brute force); batch of up to "
        f"{BATCH_QUERIES:,} queries (1,000 for the peer, 50 for brute force).",
        "",
        *lines,
        *extra,
    ]
    text = "\n".join(doc) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
