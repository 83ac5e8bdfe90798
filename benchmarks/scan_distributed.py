"""Distributed scan (issue #16): the local engine against the Ray engine, side by side in one
run, on N small synthetic images; then a projection for 10 and 100 nodes.

Makes N benign synthetic images (64x64 to 128x128 random colour blocks with noise, half PNG,
half JPEG) in a temporary directory and a bank of random PDQ hashes (none of them the
images'), then scans the directory with ``scan_paths`` (no actions, a journal in the temp
directory):

- the local engine, ``workers=0`` (one process per core);
- the Ray engine on one node (``ray.init(num_cpus=<cores>)``), at the default batch size and
  at larger ones (``ScanOptions.hash_batch``);
- the Ray engine on a simulated 2-node cluster (``ray.cluster_utils.Cluster``: two raylets on
  this same machine, one CPU each, so no faster than one node: it shows the multi-node path
  works and what it costs, not scaling).

Then the parts the projection needs, measured in this process: the per-file hashing cost
(``hash_batch`` in-process, CPU seconds), Ray's per-task overhead (empty tasks carrying a
batch like the scan's, round trip through the driver), and the driver's per-file cost of
``match_batch`` + journal append against the bank (and of walking a local tree). The driver
is the ceiling by design: the bank index never leaves it, so matching and the journal stay
there. Synthetic media only; nothing matches.

    python benchmarks/scan_distributed.py [--files 100000] [--bank 100000]
    python benchmarks/scan_distributed.py --quick          # ~2,000 files, a smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import logging
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from amparo.app import Amparo
from amparo.banks.model import BankInfo
from amparo.config import load_settings
from amparo.scan import (
    HashLimits,
    HashOutcome,
    HashTask,
    ScanJournal,
    ScanOptions,
    ScanProgress,
    hash_batch,
    match_batch,
    scan_paths,
)
from amparo.scan.engine import available_cores
from amparo.scan.scanner import archive_limits
from amparo.scan.walk import walk_paths

PER_DIR = 1000
PROJECTED_CORES = 16
PROJECTED_NODES = (1, 10, 100)


# --- inputs ---------------------------------------------------------------------------------


def _make_range(args: tuple[str, int, int]) -> int:
    root, start, stop = args
    written = 0
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        size = int(rng.integers(64, 129))
        blocks = (rng.random((6, 6, 3)) * 255).astype(np.uint8)
        image = Image.fromarray(blocks).resize((size, size), Image.Resampling.BILINEAR)
        noisy = np.asarray(image, dtype=np.int16) + rng.integers(-12, 13, (size, size, 3))
        image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
        folder = Path(root) / f"d{i // PER_DIR:04d}"
        folder.mkdir(exist_ok=True)
        out = io.BytesIO()
        if i % 2:
            image.save(out, "JPEG", quality=85)
            name = f"f{i:07d}.jpg"
        else:
            image.save(out, "PNG")
            name = f"f{i:07d}.png"
        (folder / name).write_bytes(out.getvalue())
        written += out.tell()
    return written


def make_images(root: Path, n: int) -> int:
    """N synthetic images under ``root`` (1,000 a folder); their total size in bytes."""
    step = 2000
    ranges = [(str(root), s, min(n, s + step)) for s in range(0, n, step)]
    with multiprocessing.get_context("spawn").Pool(available_cores()) as pool:
        return sum(pool.map(_make_range, ranges))


def make_bank(amparo: Amparo, n: int) -> None:
    """A bank of ``n`` random PDQ hashes (no image of the benchmark is among them)."""
    rng = np.random.default_rng(7)
    lines = ["signal_type,signal,category"]
    for start in range(0, n, 100_000):
        block = rng.integers(0, 256, size=(min(100_000, n - start), 32), dtype=np.uint8)
        lines += [f"pdq,{bytes(row).hex()},A1" for row in block]
    amparo.banks.create(BankInfo(name="bench"))
    amparo.banks.import_entries("bench", io.StringIO("\n".join(lines) + "\n"), "csv")


# --- measuring ------------------------------------------------------------------------------


def rss_bytes() -> int:
    """This process's resident memory: psutil's (the ``bench`` extra) or /proc's."""
    try:
        import psutil
    except ImportError:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()
    return int(psutil.Process().memory_info().rss)


class PeakRss:
    """Samples this process's RSS every 50 ms while in use (the driver's peak during a run)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Run:
    label: str
    files: int
    seconds: float
    mbytes: float
    rss_mib: float
    driver_cpu_s: float
    batch: int
    round: int = 1
    load: float = 0.0
    """The machine's 1-minute load average when the run started (other jobs included)."""

    @property
    def files_s(self) -> float:
        return self.files / self.seconds

    def row(self, base: float | None) -> str:
        ratio = f"{self.files_s / base:.2f}x" if base else "-"
        return (
            f"| {self.label} | {self.round} | {self.batch} | {self.files:,} | {self.seconds:.1f} "
            f"| {self.files_s:,.0f} | {self.mbytes / self.seconds:.2f} | {ratio} "
            f"| {self.driver_cpu_s / self.files * 1e3:.3f} | {self.rss_mib:.0f} "
            f"| {self.load:.1f} |"
        )


def scan_once(
    amparo: Amparo, root: Path, work: Path, label: str, engine: str, batch: int, rnd: int = 1
) -> Run:
    journal = work / f"scan-{label.replace(' ', '-')}-{batch}.journal"
    options = ScanOptions(
        journal=journal, workers=0, actions=False, engine=engine, hash_batch=batch
    )
    last: list[ScanProgress] = []
    load = os.getloadavg()[0]
    cpu0 = time.process_time()
    with PeakRss() as rss:
        started = time.perf_counter()
        result = scan_paths(amparo, [root], options, progress=last.append)
        seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    journal.unlink(missing_ok=True)
    assert not result.matches, "synthetic images matched a random bank"
    size = last[-1].bytes_done  # the final report (forced at the end)
    hashed = result.hashed
    if len(result.errors):
        print(f"  {label}: {len(result.errors)} errors, first: {result.errors[0].message}")
    run = Run(label, hashed, seconds, size / 1e6, rss.peak / 2**20, cpu, batch, rnd, load)
    print(
        f"  round {rnd}, {label} (batch {batch}, load {load:.1f}): {hashed:,} files in "
        f"{seconds:.1f} s = "
        f"{run.files_s:,.0f} files/s, driver CPU {cpu:.1f} s, peak RSS {run.rss_mib:.0f} MiB",
        flush=True,
    )
    return run


@contextmanager
def ray_local(cpus: int) -> Iterator[Any]:
    import ray

    ray.init(
        address="local",
        num_cpus=cpus,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    try:
        yield ray
    finally:
        ray.shutdown()


@contextmanager
def ray_two_nodes() -> Iterator[Any]:
    import ray
    from ray.cluster_utils import Cluster

    cluster: Any = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, logging_level=logging.WARNING)
    try:
        yield ray
    finally:
        ray.shutdown()
        cluster.shutdown()


def _empty_batch(tasks: list[HashTask], _limits: object) -> list[HashOutcome]:
    return [
        HashOutcome(t.path, t.size, t.mtime_ns, t.media_type, None, on_disk=t.on_disk)
        for t in tasks
    ]


def ray_task_overhead(ray: Any, sample: list[HashTask], batch: int, rounds: int) -> float:
    """Seconds of wall time per empty task carrying ``batch`` tasks and returning as many
    outcomes, with a window of 2 per CPU in flight as the engine keeps (driver side)."""
    remote = ray.remote(_empty_batch).options(num_cpus=1, max_retries=3)
    limits = ray.put(None)
    tasks = (sample * (batch // len(sample) + 1))[:batch]
    window = 2 * int(ray.cluster_resources().get("CPU", 1))
    ray.get([remote.remote(tasks, limits) for _ in range(window)])  # warm the workers
    started = time.perf_counter()
    in_flight: list[Any] = []
    for _ in range(rounds):
        in_flight.append(remote.remote(tasks, limits))
        if len(in_flight) >= window:
            done, in_flight = ray.wait(in_flight, num_returns=1)
            ray.get(done)
    ray.get(in_flight)
    return (time.perf_counter() - started) / rounds


def cpu_per_call(fn: Callable[[], object], repeat: int = 1) -> float:
    fn()  # warm
    started = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - started) / repeat


# --- main -----------------------------------------------------------------------------------


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(ln.split(":", 1)[1].strip() for ln in fh if "model name" in ln)
    except (OSError, StopIteration):
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {available_cores()} cores, {ram:.0f} GiB RAM"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--bank", type=int, default=100_000, help="random PDQ entries")
    parser.add_argument("--quick", action="store_true", help="~2,000 files: a smoke run")
    parser.add_argument(
        "--batches", default="16,64,256", help="Ray batch sizes tried (ScanOptions.hash_batch)"
    )
    parser.add_argument(
        "--cluster-files",
        type=int,
        default=20_000,
        help="files for the 2-node run (a subset of --files)",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="interleaved rounds of local and Ray runs"
    )
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args()
    if args.quick:
        args.files, args.bank, args.cluster_files, args.rounds = 2000, 20_000, 2000, 1
    cores = available_cores()
    batches = [int(b) for b in args.batches.split(",")]
    out: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        out.append(line)

    work = Path(tempfile.mkdtemp(prefix="amparo-scan-bench-"))
    try:
        root = work / "media"
        root.mkdir()
        t0 = time.perf_counter()
        total_bytes = make_images(root, args.files)
        print(
            f"made {args.files:,} images ({total_bytes / 1e6:.1f} MB) in "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        subset = work / "subset"
        subset.mkdir()
        for folder in sorted(root.iterdir())[: max(1, args.cluster_files // PER_DIR)]:
            (subset / folder.name).symlink_to(folder)
        amparo = Amparo(load_settings(env={}, overrides={"home": work / "home"}))
        t0 = time.perf_counter()
        make_bank(amparo, args.bank)
        print(f"bank of {args.bank:,} PDQ made in {time.perf_counter() - t0:.0f} s", flush=True)
        # Warm up (imports, the index's JIT kernels, the worker pool) on one folder.
        warm = work / "warm"
        warm.mkdir()
        (warm / "d").symlink_to(sorted(root.iterdir())[0])
        scan_paths(amparo, [warm], ScanOptions(journal=work / "warm.journal", actions=False))

        # The parts of the projection, measured in this process.
        limits_src = archive_limits(amparo.settings, ScanOptions())
        tasks = [t for t in walk_paths([str(warm)], limits_src) if isinstance(t, HashTask)]
        limits = HashLimits(
            max_pixels=amparo.settings.max_image_pixels,
            max_file_bytes=amparo.settings.max_file_bytes,
            archives=limits_src,
        )
        hash_cost = cpu_per_call(lambda: hash_batch(tasks, limits)) / len(tasks)
        outcomes = [o for o in hash_batch(tasks, limits) if isinstance(o, HashOutcome)]
        journal = ScanJournal(work / "cost.journal", banks=None, resume=False)

        def match_and_journal() -> None:
            for s in range(0, len(outcomes), 256):
                journal.append(match_batch(amparo, outcomes[s : s + 256], None))

        driver_cost = cpu_per_call(match_and_journal, repeat=3) / len(outcomes)
        journal.close()
        walked = sum(1 for _ in walk_paths([str(subset)], limits_src))
        walk_cost = cpu_per_call(lambda: sum(1 for _ in walk_paths([str(subset)], limits_src)))
        walk_cost /= walked

        runs: list[Run] = []
        overhead: dict[int, float] = {}
        # Interleaved rounds, the order reversed every other round, so that other jobs'
        # load (rising or falling) hits every configuration alike.
        for rnd in range(1, args.rounds + 1):
            forward = rnd % 2 == 1
            if forward:
                runs.append(scan_once(amparo, root, work, "local", "local", 16, rnd))
            with ray_local(cores) as ray:
                if not overhead:
                    overhead = {
                        b: ray_task_overhead(ray, tasks, b, 2000 // max(1, b // 16))
                        for b in batches
                    }
                for batch in batches if forward else batches[::-1]:
                    runs.append(scan_once(amparo, root, work, "ray 1 node", "ray", batch, rnd))
            if not forward:
                runs.append(scan_once(amparo, root, work, "local", "local", 16, rnd))
        medians = {
            (r.label, r.batch): statistics.median(
                x.files_s for x in runs if (x.label, x.batch) == (r.label, r.batch)
            )
            for r in runs
        }
        best_batch = max((k for k in medians if k[0] == "ray 1 node"), key=medians.__getitem__)[1]
        best = next(r for r in runs if (r.label, r.batch) == ("ray 1 node", best_batch))
        cluster_root = subset if args.cluster_files < args.files else root
        with ray_two_nodes():
            two = scan_once(amparo, cluster_root, work, "ray 2 nodes x 1 CPU", "ray", best.batch)
        runs.append(two)
        amparo.close()

        local_median = medians[("local", 16)]
        say(
            f"Machine: {machine()}. Date: {dt.date.today().isoformat()}. "
            f"Python {platform.python_version()}, Ray {version('ray')}, "
            f"amparo {version('amparo')}."
        )
        say(
            f"{args.files:,} synthetic images, 64x64 to 128x128, half PNG half JPEG, "
            f"{total_bytes / 1e6:.1f} MB in all ({total_bytes / args.files / 1e3:.1f} kB "
            f"each); bank of {args.bank:,} random PDQ hashes; no actions; nothing matches."
        )
        say()
        say(
            "| engine | round | batch (hash_batch) | files | s | files/s | MB/s "
            "| vs local (same round) | driver CPU ms/file | driver peak RSS MiB | load avg |"
        )
        say("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        local_of = {r.round: r.files_s for r in runs if r.label == "local"}
        for r in runs:
            say(r.row(local_of.get(r.round)))
        say()
        say(
            "Medians over the rounds: "
            + "; ".join(
                f"{label} batch {batch} {v:,.0f} files/s ({v / local_median:.2f}x local)"
                for (label, batch), v in medians.items()
            )
            + "."
        )
        say()
        say("Costs measured in this process (the projection's inputs):")
        say()
        say("| cost | value |")
        say("|---|---:|")
        say(f"| hashing, per file (`hash_batch` in-process, CPU) | {hash_cost * 1e3:.3f} ms |")
        for b, sec in overhead.items():
            say(
                f"| Ray task round trip, empty task of {b} files (wall, window of "
                f"{2 * cores}) | {sec * 1e3:.3f} ms ({sec / b * 1e3:.3f} ms/file) |"
            )
        say(
            f"| driver: `match_batch` + journal append, per file (bank of {args.bank:,}) "
            f"| {driver_cost * 1e3:.3f} ms |"
        )
        say(
            f"| driver: walking a local tree (scandir + sniff), per file | "
            f"{walk_cost * 1e3:.3f} ms |"
        )
        say()
        b = best.batch
        # Each hashing core pays the file's hashing and its share of a task's round trip.
        worker_cost = hash_cost + overhead[b] / b
        # The driver's ceiling, two ways: the sum of its parts measured alone (match +
        # journal + a task's round trip per file), and what the Ray scan's driver process
        # really spent per file (walk, submit, collect, match, journal, Ray's own threads).
        parts = driver_cost + overhead[b] / b
        whole = best.driver_cpu_s / best.files
        say(
            f"PROJECTION (not measured): nodes of {PROJECTED_CORES} cores, each core as fast "
            f"as one here, batch {b}; files/s = min(nodes x cores / per-file cost on a core, "
            f"1 / driver cost per file). Per-file cost on a core = hashing + a task's round "
            f"trip / batch = {worker_cost * 1e3:.3f} ms. Driver cost per file: the parts "
            f"(match + journal + task round trip / batch) {parts * 1e3:.3f} ms; the whole "
            f"driver process in the Ray scan above (walk, submit, collect, match, journal) "
            f"{whole * 1e3:.3f} ms of CPU."
        )
        say()
        say(
            "| nodes | cores | hashing capacity files/s | driver ceiling: parts | "
            "driver ceiling: whole driver | projected files/s |"
        )
        say("|---:|---:|---:|---:|---:|---:|")
        for nodes in PROJECTED_NODES:
            capacity = nodes * PROJECTED_CORES / worker_cost
            say(
                f"| {nodes} | {nodes * PROJECTED_CORES} | {capacity:,.0f} | "
                f"{1 / parts:,.0f} | {1 / whole:,.0f} | "
                f"{min(capacity, 1 / parts, 1 / whole):,.0f} - "
                f"{min(capacity, max(1 / parts, 1 / whole)):,.0f} |"
            )
        say()
        say(
            f"Ray 1 node / local (medians): "
            f"{medians[('ray 1 node', best_batch)] / local_median:.2f}x at batch {best_batch} "
            f"(target >= 0.8x)."
        )
        if args.markdown:
            args.markdown.write_text("\n".join(out) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
