"""The Ray engine: the scan's hashing stage on a Ray cluster (``amparo scan --engine ray``).

Why Ray core tasks, not actors or Ray Data: a batch of files is an independent, stateless
unit, which is exactly a task. Tasks are retried by Ray when their worker or node dies (an
actor's in-flight calls are not), they never hold a CPU while idle (an actor pool sized to
every CPU starves the tasks that read the inputs, and hangs), and the driver keeps its
bounded window of batches in flight as with the local engine, so memory stays flat however
many files there are. Ray Data would add a second scheduler on top and hide the per-batch
results the journal needs. Ray has no job-level resume: the scan journal is the resume.

Each task runs :func:`amparo.scan.worker.hash_batch`, the function the local engine runs;
only hashes and per-file outcomes travel back, never media, and the bank index never
leaves the driver: matching stays on the driver, which also runs the rules and writes the
journal and the report (hash lists are sensitive; cluster nodes learn nothing of them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from concurrent.futures import Future
from typing import Any

from amparo.errors import ConfigError
from amparo.scan.model import HashLimits, HashTask, WorkerItem
from amparo.scan.worker import hash_batch

log = logging.getLogger("amparo.scan")

BATCH_SIZE = 64
"""Files a task: on one quiet 2-core node 64 ran 0.99x the local engine and 16 0.85x (each
task pays a round trip; docs/benchmarks.md, "Distributed scan"), and 64 costs the driver a
third less CPU a file, which is the ceiling on a large cluster."""
TASK_RETRIES = 3
"""How often Ray runs a batch again when the worker (or node) running it dies."""
CONNECT_TIMEOUT_S = 5.0
"""How long to wait for a cluster's address to answer before saying it cannot be reached."""
_ALIVE_CACHE_SECONDS = 2.0
_RAY_HINT = (
    "start one with `ray start --head` and pass its address (--ray-address HOST:6379, or "
    "auto), or leave --ray-address out to run a local Ray instance for this scan"
)


def import_ray() -> Any:
    """The ``ray`` module, or a clear error saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            "--engine ray needs Ray, which is not installed",
            hint="pip install 'amparo[ray]' (on the driver and on every node of the cluster)",
        ) from exc
    return ray


def _hash_batch_task(tasks: list[HashTask], limits: HashLimits) -> list[WorkerItem]:
    return hash_batch(tasks, limits)


def cluster_address(address: str | None) -> str:
    """The cluster to join: ``address``, else ``RAY_ADDRESS`` (how Ray jobs name theirs),
    else ``"local"``: a new instance for this scan. Never "whatever cluster ran last on this
    machine", which is what Ray's own default does (it may be someone else's)."""
    return address or os.environ.get("RAY_ADDRESS") or "local"


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast when ``host:port`` (or ``ray://host:port``) does not accept connections.

    Ray itself retries an unreachable address for minutes, logging as it goes; a scan
    pointed at the wrong place should say so in seconds. ``auto`` and ``local`` are Ray's
    to resolve (``auto`` only finds clusters that run).
    """
    if address in ("auto", "local"):
        return
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"the Ray address {address!r} is not host:port",
            hint="pass the head node's address, e.g. --ray-address 10.0.0.5:6379, or auto",
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no answer in {timeout:g} s"
        raise ConfigError(
            f"cannot reach the Ray cluster at {address}: {reason}", hint=_RAY_HINT
        ) from exc


class RayEngine:
    """Runs hashing batches as Ray tasks (one CPU each) on the cluster at ``address``.

    ``address`` None starts a local Ray instance for this scan (stopped at :meth:`close`),
    unless ``RAY_ADDRESS`` names a cluster; ``"auto"`` or ``host:port`` joins a running
    cluster (left running, its settings untouched). When Ray is already initialised in this
    process (a notebook, a Ray job, a test), the engine uses that and leaves it running.

    ``workers`` caps the batches in flight (0: two per CPU of the cluster's live nodes, as
    it grows or shrinks): :meth:`submit` waits while that many are unfinished, so no more than
    ``capacity`` batches run or queue on the cluster, and the driver holds at most one
    finished batch more (the one the scanner is about to collect), whatever the cluster's size.
    """

    def __init__(self, limits: HashLimits, *, address: str | None = None, workers: int = 0):
        self._ray = ray = import_ray()
        self._owns = False
        self._in_flight: set[Any] = set()
        self._lock = threading.Lock()
        if not ray.is_initialized():
            self._start(cluster_address(address))
        try:
            self._limits = ray.put(limits)  # once per scan; a top-level ref arrives resolved
            self._remote = ray.remote(_hash_batch_task).options(
                num_cpus=1, max_retries=TASK_RETRIES, retry_exceptions=False
            )
        except BaseException:
            self.close()
            raise
        self._alive = (0.0, 0)
        self._workers = workers
        self.batch_size = BATCH_SIZE

    @property
    def capacity(self) -> int:
        """Batches kept in flight: ``workers`` when given, else two per CPU of the cluster's
        live nodes, re-read as it changes (an autoscaling cluster that grows gets more work;
        one that loses a node, less)."""
        if self._workers > 0:
            return self._workers
        return max(2, 2 * self.workers_alive())

    def _start(self, address: str) -> None:
        check_reachable(address)
        try:
            self._ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,  # workers' output is Ray's business, not the report's
                # Ray's INFO and WARNING lines (its start-up, its default token auth) would
                # flood the scan's stderr; Ray's own defaults (token auth included) stay.
                logging_level=logging.ERROR,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            if self._ray.is_initialized():  # half started: stop what was started
                self._ray.shutdown()
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"cannot join the Ray cluster at {address!r}: {first}", hint=_RAY_HINT
            ) from exc
        self._owns = True

    @property
    def in_flight(self) -> int:
        """Batches submitted and not finished yet."""
        with self._lock:
            return len(self._in_flight)

    def submit(self, tasks: list[HashTask]) -> Future[list[WorkerItem]]:
        self._wait_for_room()
        ref = self._remote.remote(tasks, self._limits)
        with self._lock:
            self._in_flight.add(ref)
        future: Future[list[WorkerItem]] = ref.future()
        future.add_done_callback(lambda _f: self._done(ref))
        return future

    def _wait_for_room(self) -> None:
        # The scanner collects the oldest batch once more than `capacity` are pending; this
        # keeps it to `capacity` unfinished on the cluster even while it does.
        while True:
            with self._lock:
                refs = list(self._in_flight)
            if len(refs) < self.capacity:
                return
            ready, _ = self._ray.wait(refs, num_returns=len(refs) - self.capacity + 1)
            with self._lock:
                self._in_flight.difference_update(ready)

    def _done(self, ref: Any) -> None:
        with self._lock:
            self._in_flight.discard(ref)

    def reset(self) -> None:
        pass  # Ray retries a batch whose worker died; a batch that still fails is its error

    def workers_alive(self) -> int:
        """CPUs of the cluster's live nodes (one hashing task each), re-read every 2 s."""
        checked, count = self._alive
        now = time.monotonic()
        if now - checked < _ALIVE_CACHE_SECONDS and count:
            return count
        try:
            nodes = self._ray.nodes()
        except Exception:  # the cluster is going away: say what was last seen
            return count
        count = int(sum(n.get("Resources", {}).get("CPU", 0) for n in nodes if n.get("Alive")))
        self._alive = (now, count)
        return count

    def close(self) -> None:
        with self._lock:
            left = list(self._in_flight)
            self._in_flight.clear()
        for ref in left:
            with contextlib.suppress(Exception):  # already finished or the cluster is gone
                self._ray.cancel(ref, force=True)
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns = False
