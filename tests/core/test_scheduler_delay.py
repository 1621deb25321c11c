"""Delayed spawns: scheduled on the scheduler's clock, started in priority order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

import aiohttp_jobs
from aiohttp_jobs import EventKind, JobState, Priority, Scheduler
from aiohttp_jobs.testing import FakeClock
from tests.helpers import returning, settle


async def test_a_delayed_job_is_scheduled_until_due_then_runs() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock=clock)
    job = await scheduler.spawn(returning("late"), delay=10)
    assert job.scheduled and job.pending and job.state is JobState.SCHEDULED
    assert (scheduler.scheduled_count, scheduler.pending_count) == (1, 0)
    assert scheduler.active_count == 0 and job in scheduler
    assert scheduler.get_job(job.id) is job
    await clock.advance(9.5)
    assert job.scheduled
    await clock.advance(0.5)
    assert not job.scheduled and scheduler.scheduled_count == 0
    assert await job.wait() == "late"
    await scheduler.close()


async def test_a_delayed_job_holds_no_slot_while_it_waits() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock=clock, limit=1, pending_limit=1)
    delayed = [await scheduler.spawn(returning(i), delay=5) for i in range(3)]
    now = await scheduler.spawn(returning("now"))
    assert now.state is JobState.RUNNING and not scheduler.full
    assert await now.wait() == "now"
    await clock.advance(5)
    # Due together beyond the pending limit: all accepted, none lost.
    assert [await job.wait() for job in delayed] == [0, 1, 2]
    await scheduler.close()


async def test_jobs_due_together_start_in_priority_order() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock=clock, limit=1)
    order: list[str] = []
    scheduler.events.add_listener(
        lambda e: (
            order.append(e.job.name)
            if isinstance(e, aiohttp_jobs.JobEvent) and e.kind is EventKind.STARTED
            else None
        )
    )
    for prio in ("low", "normal", "high", "critical"):
        await scheduler.spawn(returning(prio), prio, priority=prio, delay=3)
    await clock.advance(3)
    await scheduler.wait_idle()
    assert order == ["critical", "high", "normal", "low"]
    await scheduler.close()


async def test_start_at_takes_a_timestamp_or_an_aware_datetime() -> None:
    clock = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    scheduler = Scheduler(clock=clock)
    at_time = await scheduler.spawn(returning(1), start_at=clock.time() + 60)
    at_datetime = scheduler.spawn_nowait(
        returning(2), start_at=clock.now() + timedelta(minutes=2)
    )
    past = await scheduler.spawn(returning(3), start_at=clock.time() - 1)
    assert at_time.scheduled and at_datetime.scheduled
    assert not past.scheduled  # already due: spawned as usual
    await clock.advance(60)
    assert await at_time.wait() == 1 and at_datetime.scheduled
    await clock.advance(timedelta(minutes=1))
    assert await at_datetime.wait() == 2
    await scheduler.close()


async def test_a_scheduled_job_is_cancellable_like_a_pending_one() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock=clock)
    job = await scheduler.spawn(returning(1), delay=30)
    other = await scheduler.spawn(returning(2), delay=30)
    await job.close()
    assert job.state is JobState.CANCELLED and job not in scheduler
    assert scheduler.scheduled_count == 1
    await other.close()
    assert clock.next_timer is None  # its timer went with the last job due then
    await clock.advance(30)
    assert scheduler.active_count == 0
    with pytest.raises(asyncio.CancelledError):
        await job.wait()
    await scheduler.close()


async def test_close_drops_scheduled_jobs_and_drain_lets_them_start() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock=clock)
    kept = await scheduler.spawn(returning("kept"), delay=5)
    scheduler.drain()  # accepted before the drain: still starts when due
    await clock.advance(5)
    assert await kept.wait() == "kept"
    second = Scheduler(clock=clock)
    job = await second.spawn(returning(0), delay=5)
    await second.close()
    assert job.state is JobState.CANCELLED and second.scheduled_count == 0
    await scheduler.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"delay": -1}, "delay"),
        ({"delay": float("nan")}, "delay"),
        ({"start_at": float("inf")}, "start_at"),
        ({"start_at": datetime(2030, 1, 1)}, "start_at"),  # naive
        ({"delay": 1, "start_at": 5.0}, "not both"),
    ],
)
async def test_bad_delays_are_refused_and_the_coroutine_closed(
    kwargs: dict[str, object], match: str
) -> None:
    scheduler = Scheduler(clock=FakeClock())
    coro = returning(0)
    with pytest.raises(aiohttp_jobs.JobsError, match=match):
        await scheduler.spawn(coro, **kwargs)  # type: ignore[arg-type]
    assert coro.cr_frame is None  # closed: no "never awaited" warning
    await scheduler.close()


async def test_a_delayed_job_is_announced_as_scheduled() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock=clock)
    seen: list[tuple[EventKind, JobState]] = []
    scheduler.events.add_listener(
        lambda e: (
            seen.append((e.kind, e.job.state))
            if isinstance(e, aiohttp_jobs.JobEvent)
            else None
        )
    )
    job = await scheduler.spawn(returning(1), delay=1, priority=Priority.LOW)
    await clock.advance(1)
    await job.wait()
    await settle()
    assert seen[0] == (EventKind.CREATED, JobState.SCHEDULED)
    assert [kind for kind, _ in seen] == [
        EventKind.CREATED,
        EventKind.STARTED,
        EventKind.FINISHED,
    ]
    await scheduler.close()
