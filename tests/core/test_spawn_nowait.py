"""The non-waiting spawn path and what finished jobs keep: ``spawn_nowait()``,
done callbacks called as the job finishes, outcomes kept without the task."""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import Coroutine
from typing import Any

import pytest

from aiohttp_jobs import (
    JobState,
    Priority,
    Scheduler,
    SchedulerClosedError,
    SchedulerFullError,
    UnknownPriorityError,
    current_job,
)
from tests.helpers import blocked, returning


async def test_spawn_nowait_starts_a_job_without_awaiting() -> None:
    async with Scheduler() as scheduler:
        job = scheduler.spawn_nowait(returning(7), "seven", tags=("t",))
        assert job.state is JobState.RUNNING and job in scheduler
        assert job.name == "seven" and job.tags == ("t",)
        assert await job.wait() == 7


async def test_spawn_nowait_queues_then_refuses_when_the_pending_list_is_full() -> None:
    gate = asyncio.Event()
    async with Scheduler(limit=1, pending_limit=1) as scheduler:
        running = scheduler.spawn_nowait(blocked(gate))
        queued = scheduler.spawn_nowait(returning("queued"))
        assert running.active and queued.pending
        refused = returning("refused")
        with pytest.raises(SchedulerFullError, match="pending_limit=1"):
            scheduler.spawn_nowait(refused)
        assert inspect.getcoroutinestate(refused) == inspect.CORO_CLOSED
        assert len(scheduler) == 2  # the refused job left no trace
        # A critical job is never held back by the limit.
        critical = scheduler.spawn_nowait(returning("c"), priority=Priority.CRITICAL)
        assert critical.active
        gate.set()
        assert await queued.wait() == "queued"


async def test_spawn_nowait_refuses_on_a_closed_or_draining_scheduler() -> None:
    scheduler = Scheduler()
    scheduler.drain()
    coro = returning(1)
    with pytest.raises(SchedulerClosedError, match="draining"):
        scheduler.spawn_nowait(coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
    await scheduler.close()
    coro = returning(1)
    with pytest.raises(SchedulerClosedError, match="closed"):
        scheduler.spawn_nowait(coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


async def test_spawn_nowait_checks_its_arguments_and_closes_the_coroutine() -> None:
    async with Scheduler() as scheduler:
        coro = returning(1)
        with pytest.raises(UnknownPriorityError):
            scheduler.spawn_nowait(coro, priority="urgent")
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        job = scheduler.spawn_nowait(future)  # any awaitable
        future.set_result(3)
        assert await job.wait() == 3


async def test_spawn_nowait_works_from_a_plain_callback() -> None:
    async with Scheduler() as scheduler:
        jobs = []
        asyncio.get_running_loop().call_soon(
            lambda: jobs.append(scheduler.spawn_nowait(returning("cb")))
        )
        await asyncio.sleep(0)
        assert await jobs[0].wait() == "cb"


async def test_done_callbacks_run_as_the_job_finishes_in_order() -> None:
    seen: list[tuple[str, bool, int]] = []
    async with Scheduler() as scheduler:
        job = await scheduler.spawn(returning(1))
        for name in ("first", "second", "third"):
            job.add_done_callback(
                lambda j, name=name: seen.append((name, j.done, scheduler.active_count))
            )
        await job.wait()
        # Called directly when the job finished, after the scheduler let it go.
        assert seen == [("first", True, 0), ("second", True, 0), ("third", True, 0)]


async def test_a_failing_done_callback_is_reported_and_the_others_still_run() -> None:
    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        seen: list[str] = []
        async with Scheduler() as scheduler:
            job = await scheduler.spawn(returning(1))

            def broken(_job: object) -> None:
                raise RuntimeError("callback broke")

            job.add_done_callback(broken)
            job.add_done_callback(lambda _job: seen.append("after"))
            await job.wait()
        assert seen == ["after"]
        assert len(reported) == 1
        assert isinstance(reported[0]["exception"], RuntimeError)
        assert reported[0]["job"] is job
    finally:
        loop.set_exception_handler(None)


async def test_a_finished_job_keeps_its_outcome_but_not_its_task() -> None:
    async with Scheduler() as scheduler:
        unnamed = await scheduler.spawn(returning("value"))
        named = await scheduler.spawn(returning(None), "named")
        failed = await scheduler.spawn(_fail_soon(ValueError("no")))
        failed.add_done_callback(lambda _job: None)
        task_name = unnamed.get_name()
        await asyncio.gather(unnamed.wait(), named.wait())
        await asyncio.sleep(0.01)
        for job in (unnamed, named, failed):
            assert not any(
                isinstance(ref, (asyncio.Task, Coroutine))
                for ref in gc.get_referents(job)
            )
        assert unnamed.result() == "value" and unnamed.name == "returning"
        assert unnamed.get_name() == task_name and task_name.startswith("Task-")
        assert named.get_name() == "named"
        assert isinstance(failed.exception(), ValueError)
        with pytest.raises(ValueError):
            failed.result()


async def test_current_job_reaches_sub_tasks_of_a_job() -> None:
    async def part() -> str:
        await asyncio.sleep(0)
        return current_job().name

    async def whole() -> list[str]:
        return list(await asyncio.gather(part(), part()))

    async with Scheduler() as scheduler:
        job = await scheduler.spawn(whole(), "parent")
        assert await job.wait() == ["parent", "parent"]


async def _fail_soon(exc: BaseException) -> None:
    await asyncio.sleep(0)
    raise exc


async def test_done_callbacks_run_before_waiters_resume() -> None:
    order: list[str] = []
    async with Scheduler() as scheduler:
        job = await scheduler.spawn(returning(1))

        async def waiter() -> None:
            await job.wait()
            order.append("waiter")

        watching = asyncio.get_running_loop().create_task(waiter())
        await asyncio.sleep(0)
        job.add_done_callback(lambda _job: order.append("callback"))
        await watching
    assert order == ["callback", "waiter"]


async def test_spawn_nowait_jobs_emit_events_and_reach_the_history() -> None:
    seen: list[tuple[str, str]] = []
    gate = asyncio.Event()
    async with Scheduler(limit=1, start_timeout_warning=60) as scheduler:
        scheduler.events.add_listener(
            lambda event: seen.append((event.kind.value, event.job.name))
        )
        first = scheduler.spawn_nowait(blocked(gate), "first")
        second = scheduler.spawn_nowait(returning(2), "second")
        assert second.pending
        gate.set()
        await second.wait()
        await first.wait()
    assert seen == [
        ("created", "first"),
        ("started", "first"),
        ("created", "second"),
        ("finished", "first"),
        ("started", "second"),
        ("finished", "second"),
    ]
    assert [job.name for job in scheduler.history] == ["first", "second"]


async def test_a_job_closed_while_pending_keeps_its_name() -> None:
    gate = asyncio.Event()
    async with Scheduler(limit=1) as scheduler:
        scheduler.spawn_nowait(blocked(gate))
        queued = scheduler.spawn_nowait(returning(1))
        await queued.close()
        assert queued.state is JobState.CANCELLED and queued.name == "returning"
        assert not any(isinstance(ref, Coroutine) for ref in gc.get_referents(queued))
        gate.set()
