"""Thread and process pools for blocking work, created on first use."""

from __future__ import annotations

import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

__all__ = ["Pools"]


class Pools:
    """Lazily created executors, sized from the scheduler's capacity."""

    __slots__ = ("_process", "_process_size", "_thread", "_thread_size")

    def __init__(self, *, thread_size: int, process_size: int) -> None:
        self._thread_size = thread_size
        self._process_size = process_size
        self._thread: ThreadPoolExecutor | None = None
        self._process: ProcessPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"<Pools threads={self._thread_size} processes={self._process_size}>"

    @property
    def thread_size(self) -> int:
        return self._thread_size

    @property
    def process_size(self) -> int:
        return self._process_size

    def thread(self) -> Executor:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(
                max_workers=self._thread_size, thread_name_prefix="aiohttp-jobs"
            )
        return self._thread

    def process(self) -> Executor:
        if self._process is None:
            self._process = ProcessPoolExecutor(max_workers=self._process_size)
        return self._process

    def resize(self, *, thread_size: int, process_size: int) -> None:
        """New sizes for the work submitted from now on: a pool whose size
        changes is replaced on its next use, and the old one finishes what it
        was given (its workers exit afterwards)."""
        if thread_size != self._thread_size:
            self._thread_size = thread_size
            if self._thread is not None:
                self._thread.shutdown(wait=False)
                self._thread = None
        if process_size != self._process_size:
            self._process_size = process_size
            if self._process is not None:
                self._process.shutdown(wait=False)
                self._process = None

    def shutdown(self) -> None:
        """Drop queued work and let the workers exit once their current call ends.

        Python cannot interrupt a function running in a thread or process: a job
        cancelled at close stops waiting for it, the call itself runs to its end.
        """
        for pool in (self._thread, self._process):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self._thread = self._process = None


def default_sizes(capacity: int | None) -> tuple[int, int]:
    """Thread and process pool sizes for a scheduler admitting *capacity* jobs.

    Threads: the capacity plus a few spare for CRITICAL jobs (or the standard
    library's default when unlimited). Processes: no more than the CPUs.
    """
    cpus = os.cpu_count() or 1
    threads = min(32, cpus + 4) if capacity is None else capacity + 4
    processes = cpus if capacity is None else max(1, min(cpus, capacity))
    return threads, processes
