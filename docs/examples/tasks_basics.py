# ruff: noqa: T201 - this script shows its results on stdout
"""Scheduled tasks without a web application, on a FakeClock: a DST day in
Berlin, an interval, a dynamic once-off reminder, a keyword-fired task, retries.

Run it: ``python docs/examples/tasks_basics.py`` (it takes no real time).
tests/test_tasks_docs.py runs it and checks what it prints.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp_jobs import Context, Scheduler, Tasks
from aiohttp_jobs.testing import FakeClock

BERLIN = ZoneInfo("Europe/Berlin")
tasks = Tasks()


def local(ctx: Context) -> str:
    return ctx.scheduled_at.astimezone(BERLIN).strftime("%a %H:%M %Z")


@tasks.task(schedule="30 2 * * *", timezone="Europe/Berlin")
async def nightly(ctx: Context) -> None:
    print(f"nightly   {local(ctx)}")


@tasks.task(interval=timedelta(hours=6), start_at=datetime(2024, 3, 30, tzinfo=BERLIN))
async def sync(ctx: Context) -> None:
    print(f"sync      {local(ctx)}")


@tasks.dynamic_task()
async def remind(ctx: Context) -> None:
    print(f"remind    {local(ctx)} {ctx.params['user']}: {ctx.params['text']}")


@tasks.task(keyword="signed-up")
async def welcome(ctx: Context) -> None:
    print(f"welcome   {ctx.params['user']}")


@tasks.task(
    schedule="0 12 * * *", timezone="Europe/Berlin", retries=2, retry_backoff=30
)
async def flaky(ctx: Context) -> None:
    print(f"flaky     {local(ctx)} attempt {ctx.attempt}")
    if ctx.attempt < 2:
        raise ConnectionError("upstream down")


async def main() -> None:
    clock = FakeClock(datetime(2024, 3, 30, tzinfo=BERLIN))
    async with Scheduler() as scheduler:
        async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
            await runtime.schedule_task(
                remind,
                "ann-dentist",
                execute_at=datetime(2024, 3, 30, 9, 15, tzinfo=BERLIN),
                user="ann",
                text="dentist at 10",
            )
            await runtime.fire("signed-up", user="bob")
            await clock.advance(timedelta(days=2))  # Sat 00:00 -> Mon 00:00
            for info in await runtime.list_tasks():
                when = info.next_fire_at
                text = (
                    "-"
                    if when is None
                    else when.astimezone(BERLIN).strftime("%a %H:%M")
                )
                print(f"next      {info.key:<8} {text}")
    failed = scheduler.history.query(name="flaky", state="failed")
    print(f"history   {len(scheduler.history)} jobs, {len(failed)} failed")


if __name__ == "__main__":
    logging.disable(logging.ERROR)  # retries log warnings; keep the output short
    asyncio.run(main())
