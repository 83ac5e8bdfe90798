"""Where hashing batches run: in this process, or in a pool of worker processes.

An engine has one job: take a batch of tasks, give back a future of their outcomes. The
scanner keeps a few batches in flight and never holds more than that in memory. A later
distributed engine (Ray) needs only the same two methods.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Protocol

from amparo.scan.model import HashLimits, HashOutcome, HashTask
from amparo.scan.worker import hash_batch


class HashEngine(Protocol):
    capacity: int
    """How many batches to keep in flight."""

    def submit(self, tasks: list[HashTask]) -> Future[list[HashOutcome]]: ...

    def reset(self) -> None:
        """Start afresh after a worker died (its batches already failed)."""

    def close(self) -> None: ...


class InProcessEngine:
    """Hashes in the calling process (``--workers 1``): simplest, and easy to debug."""

    capacity = 1

    def __init__(self, limits: HashLimits) -> None:
        self.limits = limits

    def submit(self, tasks: list[HashTask]) -> Future[list[HashOutcome]]:
        future: Future[list[HashOutcome]] = Future()
        try:
            future.set_result(hash_batch(tasks, self.limits))
        except Exception as exc:  # a bug in a decoder must not end the scan
            future.set_exception(exc)
        return future

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


class ProcessPoolEngine:
    """Hashes in ``workers`` processes; each batch is pickled to a worker (not persisted)."""

    def __init__(self, workers: int, limits: HashLimits) -> None:
        self.workers = workers
        self.limits = limits
        self.capacity = workers * 2
        methods = multiprocessing.get_all_start_methods()
        # Not fork: the parent holds database connections and may run threads.
        self._context = multiprocessing.get_context(
            "forkserver" if "forkserver" in methods else "spawn"
        )
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context)

    def submit(self, tasks: list[HashTask]) -> Future[list[HashOutcome]]:
        return self._pool.submit(hash_batch, tasks, self.limits)

    def reset(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def make_engine(workers: int, limits: HashLimits) -> HashEngine:
    """An engine with ``workers`` processes (0: one per available core; 1: in-process)."""
    count = workers or available_cores()
    if count <= 1:
        return InProcessEngine(limits)
    return ProcessPoolEngine(count, limits)
