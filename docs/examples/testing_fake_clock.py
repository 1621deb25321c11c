# ruff: noqa: T201 - this script shows its results on stdout
"""A FakeClock without pytest: time moves only when the code says so.

Run it: ``python docs/examples/testing_fake_clock.py`` (it takes no real time).
tests/docs/test_testing.py runs it and checks what it prints.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime, timedelta

import aiohttp_jobs
from aiohttp_jobs import Context, Tasks
from aiohttp_jobs.testing import FakeClock

tasks = Tasks()


@tasks.task(interval=timedelta(minutes=10))
async def poll(ctx: Context) -> None:
    print(f"poll     {ctx.scheduled_at:%H:%M}, ran at {ctx.runtime.clock.now():%H:%M}")


async def main() -> None:
    clock = FakeClock(datetime(2024, 1, 1, 8, 0, tzinfo=UTC))
    async with aiohttp_jobs.Scheduler(clock=clock) as scheduler:

        async def report() -> None:
            print(f"report   at {clock.now():%H:%M}")

        await scheduler.spawn(report(), "report", delay=timedelta(minutes=15))
        async with tasks.runtime(app=None, scheduler=scheduler, clock=clock):
            await clock.advance(timedelta(minutes=20))  # 08:00 -> 08:20
            print(f"now      {clock.now():%H:%M}")
            # A blocked event loop (or a suspended laptop): nothing fires on
            # the way, then what fell due fires late, once (misfire policy).
            await clock.jump(timedelta(minutes=35))  # 08:20 -> 08:55
            print(f"now      {clock.now():%H:%M}")


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stdout, format="log      %(message)s")
    asyncio.run(main())
