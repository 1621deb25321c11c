"""Resizing a live scheduler: limits, pending limit, reserves and pool sizes."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import aiohttp_jobs
from aiohttp_jobs import EventKind, JobState, Priority, Scheduler
from aiohttp_jobs._core.events import SchedulerEvent
from tests.helpers import returning, settle


async def test_raising_the_limit_starts_pending_jobs_at_once_by_priority() -> None:
    scheduler = Scheduler(limit=1)
    started: list[str] = []
    scheduler.events.add_listener(
        lambda e: (
            started.append(e.job.name)
            if isinstance(e, aiohttp_jobs.JobEvent) and e.kind is EventKind.STARTED
            else None
        )
    )
    gate = asyncio.Event()
    await scheduler.spawn(gate.wait(), "running")
    for name, prio in [("low", "low"), ("normal", "normal"), ("high", "high")]:
        await scheduler.spawn(gate.wait(), name, priority=prio)
    assert scheduler.pending_count == 3
    scheduler.limit = 3  # two more slots: the two highest priorities start now
    assert started == ["running", "high", "normal"]
    assert (scheduler.active_count, scheduler.pending_count) == (3, 1)
    scheduler.reconfigure(limit=None)  # unlimited: everything starts
    assert started[-1] == "low" and scheduler.pending_count == 0
    gate.set()
    await scheduler.wait_and_close()


async def test_lowering_the_limit_never_cancels_running_jobs() -> None:
    scheduler = Scheduler(limit=3)
    gates = [asyncio.Event() for _ in range(3)]
    running = [await scheduler.spawn(g.wait()) for g in gates]
    scheduler.limit = 1
    waiting = await scheduler.spawn(returning("next"))
    await settle()
    assert all(job.state is JobState.RUNNING for job in running)
    assert waiting.pending
    gates[0].set()
    await settle()
    assert waiting.pending  # 2 still running: not below the new limit of 1
    gates[1].set()
    gates[2].set()
    assert await waiting.wait() == "next"
    await scheduler.wait_and_close()


async def test_raising_the_pending_limit_grants_waiting_spawns() -> None:
    scheduler = Scheduler(limit=1, pending_limit=1)
    gate = asyncio.Event()
    await scheduler.spawn(gate.wait())
    await scheduler.spawn(gate.wait())
    waiters = [asyncio.ensure_future(scheduler.spawn(gate.wait())) for _ in range(3)]
    await settle()
    assert not any(w.done() for w in waiters)
    scheduler.pending_limit = 2
    await settle()
    assert [w.done() for w in waiters] == [True, False, False]
    scheduler.pending_limit = 1  # lower again: the rest keep waiting, none lost
    await settle()
    assert [w.done() for w in waiters] == [True, False, False]
    scheduler.pending_limit = 0  # unbounded
    await settle()
    assert all(w.done() for w in waiters)
    assert scheduler.pending_count == 4
    gate.set()
    await scheduler.wait_and_close()


async def test_reserves_are_resizable_too() -> None:
    scheduler = Scheduler(limit=1)
    gate = asyncio.Event()
    await scheduler.spawn(gate.wait())
    high = await scheduler.spawn(gate.wait(), priority=Priority.HIGH)
    assert high.pending
    scheduler.reserve_high = 1
    assert high.state is JobState.RUNNING
    assert scheduler.capacity(Priority.HIGH) == 2
    scheduler.reserve_normal = 2
    assert scheduler.capacity(Priority.NORMAL) == 3
    assert scheduler.capacity(Priority.HIGH) == 4
    gate.set()
    await scheduler.wait_and_close()


async def test_a_reconfiguration_is_an_event_with_the_changes() -> None:
    scheduler = Scheduler(limit=2, pending_limit=10)
    events: list[Any] = []
    scheduler.events.add_listener(events.append)
    changes = scheduler.reconfigure(limit=4, pending_limit=10, reserve_high=1)
    assert changes == {"limit": (2, 4), "reserve_high": (0, 1)}
    (event,) = events
    assert isinstance(event, SchedulerEvent)
    assert event.kind is EventKind.RECONFIGURED
    assert event.changes == changes
    assert scheduler.reconfigure(limit=4) == {}  # no change, no event
    assert len(events) == 1
    await scheduler.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"limit": 0}, "limit"),
        ({"pending_limit": -1}, "pending_limit"),
        ({"reserve_normal": 1.5}, "reserve_normal"),
        ({"reserve_high": "2"}, "reserve_high"),
        ({"thread_pool_size": 0}, "thread_pool_size"),
        ({"process_pool_size": True}, "process_pool_size"),
        ({"limit": 5, "pending_limit": float("nan")}, "pending_limit"),
    ],
)
def test_reconfigure_checks_everything_before_changing_anything(
    kwargs: dict[str, Any], match: str
) -> None:
    scheduler = Scheduler(limit=2)
    with pytest.raises(aiohttp_jobs.JobsError, match=match):
        scheduler.reconfigure(**kwargs)
    assert (scheduler.limit, scheduler.pending_limit) == (2, 10000)


async def test_a_closed_scheduler_cannot_be_reconfigured() -> None:
    scheduler = Scheduler()
    await scheduler.close()
    with pytest.raises(aiohttp_jobs.SchedulerClosedError):
        scheduler.limit = 5


async def test_a_new_thread_pool_size_applies_to_new_work() -> None:
    async with Scheduler(thread_pool_size=1) as scheduler:
        first = await scheduler.spawn_in_thread(threading.get_ident)
        await first.wait()
        scheduler.reconfigure(thread_pool_size=3)
        assert scheduler.pools.thread_size == 3
        both = threading.Barrier(2, timeout=5)  # needs two threads at once
        jobs = [await scheduler.spawn_in_thread(both.wait) for _ in range(2)]
        assert {await job.wait() for job in jobs} == {0, 1}
