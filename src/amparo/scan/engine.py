"""Where hashing batches run: in this process, or in a pool of worker processes.

An engine has one job: take a batch of tasks, give back a future of their outcomes. The
scanner keeps a few batches in flight and never holds more than that in memory. The Ray
engine (:mod:`amparo.scan.ray_engine`) runs the same :func:`hash_batch` on a cluster.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import NoReturn, Protocol

from amparo.scan.model import HashLimits, HashTask, WorkerItem
from amparo.scan.worker import hash_batch

BATCH_SIZE = 16
"""Files a batch for worker processes on this machine (a batch costs one pickle each way)."""


class HashEngine(Protocol):
    @property
    def capacity(self) -> int:
        """How many batches to keep in flight (read before each submit: it may change)."""

    @property
    def batch_size(self) -> int:
        """Files per batch when the scan's options do not say."""

    def submit(self, tasks: list[HashTask]) -> Future[list[WorkerItem]]: ...

    def reset(self) -> None:
        """Start afresh after a worker died (its batches already failed)."""

    def workers_alive(self) -> int:
        """How many hashing workers are up now (for the progress display)."""

    def close(self) -> None: ...


class InProcessEngine:
    """Hashes in the calling process (``--workers 1``): simplest, and easy to debug."""

    capacity = 1
    batch_size = BATCH_SIZE

    def __init__(self, limits: HashLimits) -> None:
        self.limits = limits

    def submit(self, tasks: list[HashTask]) -> Future[list[WorkerItem]]:
        future: Future[list[WorkerItem]] = Future()
        try:
            future.set_result(hash_batch(tasks, self.limits))
        except Exception as exc:  # a bug in a decoder must not end the scan
            future.set_exception(exc)
        return future

    def reset(self) -> None:
        pass

    def workers_alive(self) -> int:
        return 1

    def close(self) -> None:
        pass


class ProcessPoolEngine:
    """Hashes in ``workers`` processes; each batch is pickled to a worker (not persisted)."""

    def __init__(self, workers: int, limits: HashLimits) -> None:
        self.workers = workers
        self.limits = limits
        self.capacity = workers * 2
        self.batch_size = BATCH_SIZE
        methods = multiprocessing.get_all_start_methods()
        # Not fork: the parent holds database connections and may run threads.
        self._context = multiprocessing.get_context(
            "forkserver" if "forkserver" in methods else "spawn"
        )
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self._context,
            initializer=die_with_scan,
            initargs=(os.getpid(),),
        )

    def submit(self, tasks: list[HashTask]) -> Future[list[WorkerItem]]:
        return self._pool.submit(hash_batch, tasks, self.limits)

    def reset(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def workers_alive(self) -> int:
        return self.workers

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


PARENT_POLL_SECONDS = 0.5
"""How often a worker checks that the scan process is alive, where it cannot be told."""
_PR_SET_PDEATHSIG = 1


def die_with_scan(scan_pid: int) -> None:
    """Worker initializer: end this worker as soon as the scan process that started it dies.

    A ``kill -9`` of the scan gives it no chance to stop its pool, and nothing else would: a
    worker blocks on a call queue whose write end it holds itself, and the forkserver stays
    up as long as a worker holds its "alive" pipe. So each worker watches the scan process
    from a daemon thread: through a pidfd where there is one (woken by the kernel at the
    scan's exit, no polling, immune to pid reuse), else by polling its pid. On Linux the
    parent-death signal is set too: it fires even when this worker is stuck in native code
    holding the GIL, when its parent is the scan process itself (``spawn``). It is not a
    substitute for the watch: under ``forkserver`` the parent is the forkserver, and the
    signal follows the parent *thread* that started the worker, not the scan process.
    """
    _set_parent_death_signal()
    try:
        pidfd = os.pidfd_open(scan_pid)
    except ProcessLookupError:
        _exit_orphaned()  # the scan died before this worker started watching it
    except (AttributeError, OSError):  # not Linux, or a kernel older than 5.3
        watch = threading.Thread(target=_poll_scan_process, args=(scan_pid,), daemon=True)
    else:
        watch = threading.Thread(target=_wait_for_exit, args=(pidfd,), daemon=True)
    watch.name = "amparo-scan-watch"
    watch.start()


def _set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no usable libc: the watch thread still works
        pass


def _wait_for_exit(pidfd: int) -> None:
    select.select([pidfd], [], [])  # readable once the process has exited
    _exit_orphaned()


def _poll_scan_process(pid: int) -> None:
    while True:
        time.sleep(PARENT_POLL_SECONDS)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            _exit_orphaned()
        except PermissionError:  # it exists (and runs as another user)
            pass


def _exit_orphaned() -> NoReturn:
    # Not sys.exit: that would wait for the batch in hand; nothing of this worker is kept.
    os._exit(1)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


ENGINES = ("local", "ray")


def make_engine(
    workers: int, limits: HashLimits, *, engine: str = "local", ray_address: str | None = None
) -> HashEngine:
    """The ``local`` engine with ``workers`` processes (0: one per available core; 1:
    in-process), or the ``ray`` engine on the cluster at ``ray_address`` (None: a local one;
    ``workers`` then caps the batches in flight, 0 meaning two per CPU of the cluster)."""
    if engine == "ray":
        from amparo.scan.ray_engine import RayEngine

        return RayEngine(limits, address=ray_address, workers=workers)
    count = workers or available_cores()
    if count <= 1:
        return InProcessEngine(limits)
    return ProcessPoolEngine(count, limits)
