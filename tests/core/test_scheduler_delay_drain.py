"""A bounded wait for idle (the graceful drain) and delayed jobs."""

from __future__ import annotations

import asyncio

from aiohttp_jobs import JobState, Scheduler
from aiohttp_jobs.testing import FakeClock


async def test_wait_idle_does_not_wait_for_jobs_due_after_its_deadline() -> None:
    clock = FakeClock(start=0.0)
    scheduler = Scheduler(clock=clock)
    later = await scheduler.spawn(asyncio.sleep(0), "in-an-hour", delay=3600)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await scheduler.wait_idle(timeout=30) is False
    assert loop.time() - started < 5  # returned at once, not at the deadline
    await scheduler.close()
    assert later.state is JobState.CANCELLED


async def test_wait_idle_waits_for_a_delayed_job_due_before_its_deadline() -> None:
    clock = FakeClock(start=0.0)
    scheduler = Scheduler(clock=clock)
    soon = await scheduler.spawn(asyncio.sleep(0), "soon", delay=10)
    later = await scheduler.spawn(asyncio.sleep(0), "later", delay=3600)
    waiting = asyncio.ensure_future(scheduler.wait_idle(timeout=30))
    await asyncio.sleep(0)
    assert not waiting.done()  # "soon" is due within the timeout
    await clock.advance(10)
    assert await waiting is False  # "soon" ran; only "later" is left
    assert soon.state is JobState.SUCCEEDED and later.scheduled
    await scheduler.close()
