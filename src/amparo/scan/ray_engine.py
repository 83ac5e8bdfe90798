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
import threading
import time
from concurrent.futures import Future
from typing import Any

from amparo.errors import ConfigError
from amparo.scan.model import HashLimits, HashTask, WorkerItem
from amparo.scan.worker import hash_batch

log = logging.getLogger("amparo.scan")

TASK_RETRIES = 3
"""How often Ray runs a batch again when the worker (or node) running it dies."""
_ALIVE_CACHE_SECONDS = 2.0


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


class RayEngine:
    """Runs hashing batches as Ray tasks (one CPU each) on the cluster at ``address``.

    ``address`` None starts a local Ray instance for this scan (stopped at :meth:`close`);
    ``"auto"`` or ``host:port`` joins a running cluster (left running). ``workers`` caps the
    batches in flight (0: two per CPU the cluster has when the scan starts).
    """

    def __init__(self, limits: HashLimits, *, address: str | None = None, workers: int = 0):
        self._ray = ray = import_ray()
        self._owns = False
        if not ray.is_initialized():
            try:
                ray.init(
                    address=address or None,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(
                    f"cannot reach the Ray cluster at {address!r}: {exc}",
                    hint="start one with `ray start --head` and pass its address "
                    "(--ray-address HOST:6379, or auto), or leave --ray-address out to run "
                    "a local Ray instance for this scan",
                ) from exc
            self._owns = True
        self._limits = ray.put(limits)  # once per scan; a top-level ref arrives resolved
        self._remote = ray.remote(_hash_batch_task).options(
            num_cpus=1, max_retries=TASK_RETRIES, retry_exceptions=False
        )
        self._in_flight: set[Any] = set()
        self._lock = threading.Lock()
        self._alive = (0.0, 0)
        cpus = self.workers_alive()
        self.capacity = workers if workers > 0 else max(2, 2 * cpus)

    def submit(self, tasks: list[HashTask]) -> Future[list[WorkerItem]]:
        ref = self._remote.remote(tasks, self._limits)
        with self._lock:
            self._in_flight.add(ref)
        future: Future[list[WorkerItem]] = ref.future()
        future.add_done_callback(lambda _f: self._done(ref))
        return future

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
