"""Blocking work on the thread and process pools."""

from __future__ import annotations

import threading

import pytest

import aiohttp_jobs
from aiohttp_jobs import (
    Priority,
    Scheduler,
    current_job,
)
from tests.helpers import double, returning, settle


async def test_thread_jobs_have_results_progress_and_a_current_job() -> None:
    def blocking(x: int) -> tuple[int, str]:
        current_job().set_progress(1, 1, "done")
        return x * 2, threading.current_thread().name

    async with Scheduler(thread_pool_size=2) as scheduler:
        job = await scheduler.spawn_in_thread(blocking, 21, priority="high")
        value, thread = await job.wait()
        await settle()
    assert value == 42 and thread.startswith("aiohttp-jobs")
    assert job.name.endswith("blocking") and job.priority is Priority.HIGH
    assert job.progress == (1.0, 1.0, "done")
    assert scheduler.pools.thread_size == 2


async def test_process_jobs_run_picklable_functions() -> None:
    async with Scheduler(process_pool_size=1) as scheduler:
        job = await scheduler.spawn_in_process(double, 21)
        assert await job.wait() == 42
        with pytest.raises(aiohttp_jobs.NotPicklableError, match="cannot be pickled"):
            await scheduler.spawn_in_process(lambda: 1)


async def test_blocking_spawns_reject_coroutine_functions() -> None:
    async with Scheduler() as scheduler:
        with pytest.raises(TypeError, match="coroutine function"):
            await scheduler.spawn_in_thread(returning, 1)
