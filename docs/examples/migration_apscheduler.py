# ruff: noqa: T201 - this script shows its results on stdout
"""APScheduler 3's job options as aiohttp-jobs task options
(docs/migration/apscheduler.md), on a FakeClock.

Run it: ``python docs/examples/migration_apscheduler.py`` (it takes no real
time). tests/docs/test_migration.py runs it and checks what it prints.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta

from aiohttp_jobs import Clock, Context, Misfire, Overlap, Scheduler, Tasks
from aiohttp_jobs.stores import MemoryStore
from aiohttp_jobs.testing import FakeClock

# Was: jobstores={"default": MemoryJobStore()} (or SQLAlchemyJobStore,
# RedisJobStore); a store outlives the application, like a job store.
tasks = Tasks(store=MemoryStore())
overlapping = Tasks()
runs: Counter[str] = Counter()
HOURLY = "0 * * * *"


async def sleep(clock: Clock, seconds: float) -> None:
    """Wait *seconds* on *clock* (a FakeClock in this script)."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not done.done():
            done.set_result(None)

    clock.call_at(clock.time() + seconds, wake)
    await done


# Was: add_job(f, "cron", minute=0, coalesce=True, misfire_grace_time=None)
@tasks.task(schedule=HOURLY, misfire=Misfire.RUN_ONCE)
async def coalesced(ctx: Context) -> None:
    runs[f"coalesced (missed={ctx.missed})"] += 1


# Was: add_job(f, "cron", minute=0, coalesce=False, misfire_grace_time=None)
@tasks.task(schedule=HOURLY, misfire=Misfire.RUN_ALL, misfire_limit=100)
async def every_one(ctx: Context) -> None:
    runs["every_one"] += 1


# Was: add_job(f, "cron", minute=0, misfire_grace_time=1): missed runs dropped
@tasks.task(schedule=HOURLY, misfire=Misfire.SKIP)
async def on_time_only(ctx: Context) -> None:
    runs["on_time_only"] += 1


# Was: add_job(f, "interval", minutes=10, max_instances=1): a run that is due
# while the previous one still runs is skipped.
@overlapping.task(interval=600, overlap=Overlap.SKIP)
async def single(ctx: Context) -> None:
    runs["single"] += 1
    await sleep(ctx.runtime.clock, 1500)  # 25 minutes


# Was: add_job(f, "interval", minutes=10, max_instances=3)
@overlapping.task(interval=600, overlap=Overlap.ALLOW, max_overlap=3)
async def parallel(ctx: Context) -> None:
    runs["parallel"] += 1
    await sleep(ctx.runtime.clock, 1500)


async def main() -> None:
    clock = FakeClock(datetime(2024, 1, 1, 0, 30, tzinfo=UTC))
    async with Scheduler(clock=clock) as scheduler:
        async with (
            tasks.runtime(app=None, scheduler=scheduler, clock=clock),
            overlapping.runtime(app=None, scheduler=scheduler, clock=clock) as rt,
        ):
            await clock.advance(timedelta(hours=1))  # 00:30 -> 01:30
            print("first hour:", dict(sorted(runs.items())))
            for name in ("single", "parallel"):
                await rt.disable(name)
            await clock.advance(timedelta(minutes=25))  # the last runs end
        runs.clear()
        await clock.jump(timedelta(hours=3))  # the application is down until 04:55
        async with tasks.runtime(app=None, scheduler=scheduler, clock=clock):
            await clock.advance(0)
        print("after 3 hours down:", dict(sorted(runs.items())))


if __name__ == "__main__":
    logging.disable(logging.WARNING)  # skipped runs are logged
    asyncio.run(main())
