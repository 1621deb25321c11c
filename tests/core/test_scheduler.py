"""The scheduler beyond aiojobs: draining, closing, waiting spawns, clear errors."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

import aiohttp_jobs
from aiohttp_jobs import (
    JobState,
    Scheduler,
)
from tests.helpers import failing, returning, settle


async def test_drain_refuses_new_jobs_and_lets_current_ones_finish() -> None:
    scheduler = Scheduler()
    gate = asyncio.Event()
    job = await scheduler.spawn(gate.wait())
    scheduler.drain()
    assert scheduler.draining and not scheduler.closed
    coro = returning(1)
    with pytest.raises(aiohttp_jobs.SchedulerClosedError, match="draining"):
        await scheduler.spawn(coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CREATED  # still ours
    coro.close()
    gate.set()
    await scheduler.wait_and_close()
    assert job.state is JobState.SUCCEEDED


async def test_cancelling_a_caller_of_close_propagates() -> None:
    scheduler = Scheduler(close_timeout=None)
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()
            raise

    job = await scheduler.spawn(slow_to_stop())
    await settle()
    closer = asyncio.ensure_future(job.close())
    await settle()
    closer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closer
    release.set()
    await settle()
    assert job.state is JobState.CANCELLED
    await scheduler.close()


async def test_spawn_cancelled_while_waiting_for_space_drops_its_job() -> None:
    scheduler = Scheduler(limit=1, pending_limit=1)
    release = asyncio.Event()
    await scheduler.spawn(release.wait())
    await scheduler.spawn(release.wait())
    assert scheduler.full
    blocked = asyncio.ensure_future(scheduler.spawn(release.wait()))
    await settle()
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    assert len(scheduler) == 2
    release.set()
    await scheduler.wait_and_close()


async def test_close_fails_spawns_waiting_for_space() -> None:
    scheduler = Scheduler(limit=1, pending_limit=1)
    await scheduler.spawn(asyncio.Event().wait())
    pending = await scheduler.spawn(asyncio.Event().wait())
    blocked = asyncio.ensure_future(scheduler.spawn(asyncio.Event().wait()))
    await settle()
    await scheduler.close()
    with pytest.raises(aiohttp_jobs.SchedulerClosedError):
        await blocked
    assert pending.state is JobState.CANCELLED


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"limit": 0}, "limit must be an integer >= 1"),
        ({"pending_limit": -1}, "pending_limit must be an integer >= 0"),
        ({"reserve_high": -1}, "reserve_high"),
        ({"close_timeout": -1}, "close_timeout"),
        (
            {"start_timeout_warning": 2, "start_timeout_critical": 1},
            "must not be shorter",
        ),
    ],
)
def test_bad_settings_fail_at_construction(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(aiohttp_jobs.ConfigError, match=match):
        Scheduler(**kwargs)


async def test_spawn_rejects_what_cannot_be_awaited() -> None:
    async with Scheduler() as scheduler:
        with pytest.raises(aiohttp_jobs.NotAwaitableError, match="got int"):
            await scheduler.spawn(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"call it, spawn\(returning"):
            await scheduler.spawn(returning)  # type: ignore[arg-type]
        coro = returning(1)
        with pytest.raises(aiohttp_jobs.UnknownPriorityError, match="'urgent'"):
            await scheduler.spawn(coro, priority="urgent")
        coro.close()


async def test_spawn_accepts_other_awaitables() -> None:
    async with Scheduler() as scheduler:
        fut = asyncio.get_running_loop().create_future()
        fut.set_result("done")
        assert await (await scheduler.spawn(fut)).wait() == "done"


async def test_drain_exempt_admits_spawns_until_close() -> None:
    scheduler = Scheduler()
    scheduler.drain()
    with scheduler.drain_exempt():
        job = await scheduler.spawn(returning(1))
        nowait = scheduler.spawn_nowait(returning(2))
    assert scheduler.draining
    assert await job.wait() == 1 and await nowait.wait() == 2
    coro = returning(3)
    with pytest.raises(aiohttp_jobs.SchedulerClosedError, match="draining"):
        await scheduler.spawn(coro)  # outside the block: refused
    coro.close()
    await scheduler.close()
    with scheduler.drain_exempt():
        with pytest.raises(aiohttp_jobs.SchedulerClosedError, match="closed"):
            await scheduler.spawn(coro := returning(4))
    coro.close()


async def test_drain_exempt_is_inherited_by_jobs_spawned_inside_it() -> None:
    scheduler = Scheduler()
    gate = asyncio.Event()
    children: list[aiohttp_jobs.Job[Any]] = []

    async def parent() -> None:
        await gate.wait()
        children.append(await scheduler.spawn(returning("child")))

    # Spawned before the drain, but inside the block: the job copies the context.
    with scheduler.drain_exempt():
        job = await scheduler.spawn(parent())
    scheduler.drain()
    gate.set()
    await job.wait()
    assert await children[0].wait() == "child"
    await scheduler.close()


async def test_running_jobs_may_spawn_while_draining_others_may_not() -> None:
    scheduler = Scheduler(limit=1)
    gate = asyncio.Event()
    children: list[aiohttp_jobs.Job[Any]] = []

    async def parent() -> None:
        await gate.wait()
        children.append(await scheduler.spawn(returning("child")))

    job = await scheduler.spawn(parent())
    scheduler.drain()
    gate.set()
    await job.wait()
    assert await children[0].wait() == "child"

    # A job of another scheduler is no exemption.
    other = Scheduler()
    coro = returning(0)

    async def foreign() -> None:
        await scheduler.spawn(coro)

    foreign_job = await other.spawn(foreign())
    with pytest.raises(aiohttp_jobs.SchedulerClosedError, match="draining"):
        await foreign_job.wait()
    coro.close()
    await other.close()
    await scheduler.close()


async def test_drain_exempt_of_one_scheduler_does_not_exempt_another() -> None:
    first, second = Scheduler(), Scheduler()
    first.drain()
    second.drain()
    with first.drain_exempt():
        job = await first.spawn(returning(1))
        coro = returning(2)
        with pytest.raises(aiohttp_jobs.SchedulerClosedError):
            await second.spawn(coro)
        coro.close()
    assert await job.wait() == 1
    await first.close()
    await second.close()


async def test_waiting_spawn_finding_a_free_slot_passes_its_pending_place_on() -> None:
    # Two running jobs end in the same loop turn while one job is pending and two
    # spawns wait for a pending place: the first waiter is promised the place,
    # then finds a free slot and starts; the second must get the place it frees.
    scheduler = Scheduler(limit=2, pending_limit=1)
    gate = asyncio.Event()
    await scheduler.spawn(gate.wait())
    await scheduler.spawn(gate.wait())
    await scheduler.spawn(returning("pending"))
    waiters = [asyncio.ensure_future(scheduler.spawn(returning(i))) for i in (1, 2)]
    await settle()
    assert not any(w.done() for w in waiters)
    gate.set()
    jobs = await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
    assert [await job.wait() for job in jobs] == [1, 2]
    await scheduler.wait_idle()
    assert (scheduler.active_count, scheduler.pending_count) == (0, 0)
    assert not scheduler.full
    await asyncio.wait_for(scheduler.spawn(returning(3)), timeout=5)
    await scheduler.wait_and_close()


async def test_a_cancelled_waiting_spawn_leaves_the_line() -> None:
    scheduler = Scheduler(limit=1, pending_limit=1)
    gate = asyncio.Event()
    await scheduler.spawn(gate.wait())
    pending = await scheduler.spawn(returning(0))
    waiters = [asyncio.ensure_future(scheduler.spawn(returning(1))) for _ in "ab"]
    await settle()
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    # Nothing left behind per cancelled spawn while the pending list stays full.
    assert not scheduler._space_waiters
    await pending.close()
    assert not scheduler.full
    job = scheduler.spawn_nowait(returning(2))  # a pending place is free again
    gate.set()
    assert await job.wait() == 2
    await scheduler.wait_and_close()


async def test_spawn_granted_a_place_before_close_fails_instead_of_queueing() -> None:
    scheduler = Scheduler(limit=1, pending_limit=1, close_timeout=None)
    running = await scheduler.spawn(asyncio.Event().wait())
    pending = await scheduler.spawn(returning(0))
    waiter = asyncio.ensure_future(scheduler.spawn(returning(1)))
    await settle()
    await pending.close()  # the waiting spawn is granted the place ...
    await scheduler.close()  # ... but close() begins before it resumes
    with pytest.raises(aiohttp_jobs.SchedulerClosedError, match="closed while"):
        await waiter
    assert running.state is JobState.CANCELLED
    assert (scheduler.active_count, scheduler.pending_count, len(scheduler)) == (
        0,
        0,
        0,
    )


async def test_active_count_falls_when_a_job_that_outlived_close_ends() -> None:
    scheduler = Scheduler(close_timeout=0)
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await release.wait()

    job = await scheduler.spawn(stubborn())
    await settle()
    await scheduler.close()
    assert scheduler.active_count == 1  # still running, past close_timeout
    release.set()
    await settle()
    assert job.done
    assert scheduler.active_count == 0


async def test_a_raising_exception_handler_is_logged_and_changes_nothing_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    def broken(scheduler: Scheduler, context: dict[str, Any]) -> None:
        calls.append(context["message"])
        raise ValueError("handler bug")

    scheduler = Scheduler(exception_handler=broken, close_timeout=0.01)
    failed = await scheduler.spawn(failing(RuntimeError("job bug")))
    await settle()
    assert calls == ["Job processing failed"]
    with pytest.raises(RuntimeError, match="job bug"):  # no hang
        await asyncio.wait_for(failed.wait(), timeout=5)
    assert "handler bug" in caplog.text and "exception_handler" in caplog.text

    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await release.wait()

    jobs = [await scheduler.spawn(stubborn()) for _ in range(2)]
    await settle()
    await scheduler.close()  # returns: every job reported, none re-raised
    assert calls[1:] == ["Job closing timed out"] * 2
    release.set()
    await settle()
    assert all(job.done for job in jobs)
