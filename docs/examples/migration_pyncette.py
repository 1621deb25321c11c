# ruff: noqa: T201 - this script shows its results on stdout
"""A pyncette application moved to aiohttp-jobs (docs/migration/pyncette.md):
the same declarations on a ``Tasks`` registry, run here on a FakeClock.

Run it: ``python docs/examples/migration_pyncette.py`` (it takes no real time).
tests/docs/test_migration.py runs it and checks what it prints.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiohttp_jobs import Context, ExecutionMode, FailureMode, Scheduler, Tasks
from aiohttp_jobs.stores import MemoryStore
from aiohttp_jobs.testing import FakeClock

# Was: app = Pyncette(concurrency_limit=10, batch_size=10)
# (a store URL such as "sqlite:///tasks.db" or "redis://..." picks a backend)
tasks = Tasks(store=MemoryStore(), concurrency_limit=10, batch_size=10)
log: list[str] = []


# Was: @app.fixture() async def db(app_context): ...  (ours receives the app)
@tasks.fixture
async def db(app: object) -> AsyncIterator[list[str]]:
    log.append("db opened")
    yield log
    log.append("db closed")


# Was: @app.middleware async def timing(context, next): await next()
@tasks.middleware
async def tag(ctx: Context, call_next: Callable[[], Awaitable[object]]) -> object:
    try:
        result = await call_next()
    except Exception as exc:
        ctx.db.append(f"{ctx.name} attempt {ctx.attempt} failed: {exc}")
        raise
    ctx.db.append(f"{ctx.name} attempt {ctx.attempt} ok")
    return result


# Was: @app.task(schedule="0 12 * * *", timezone="Europe/Dublin")
@tasks.task(schedule="0 12 * * *", timezone="Europe/Dublin")
async def noon(ctx: Context) -> None:
    ctx.db.append(f"noon {ctx.scheduled_at:%H:%M} UTC")


# Was: @app.task(interval=..., execution_mode=ExecutionMode.AT_MOST_ONCE)
@tasks.task(interval=timedelta(hours=6), execution_mode=ExecutionMode.AT_MOST_ONCE)
async def sweep(ctx: Context) -> None:
    ctx.db.append(f"sweep {ctx.scheduled_at:%H:%M}")


# Was: @app.task(..., failure_mode=FailureMode.UNLOCK); our retries= and
# retry_backoff= retry before the failure mode applies.
@tasks.task(
    schedule="30 9 * * *", failure_mode=FailureMode.COMMIT, retries=1, retry_backoff=60
)
async def flaky(ctx: Context) -> None:
    raise ConnectionError("upstream down")


# Was: @app.dynamic_task() and app_context.schedule_task(hello, "bill", ...)
@tasks.dynamic_task()
async def hello(ctx: Context) -> None:
    ctx.db.append(f"hello {ctx.params['username']} {ctx.scheduled_at:%H:%M}")


async def main() -> None:
    clock = FakeClock(datetime(2024, 6, 3, tzinfo=UTC))
    async with Scheduler() as scheduler:
        # Was: async with app.create() as app_context: await app_context.run()
        async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as rt:
            await rt.schedule_task(
                hello, "bill", schedule="0 10 * * *", username="bill"
            )
            await rt.schedule_task(
                hello,
                "once",
                execute_at=datetime(2024, 6, 3, 8, tzinfo=UTC),
                username="ann",
            )
            await clock.advance(timedelta(hours=13))
            await rt.unschedule_task(hello, "bill")
    for line in log:
        print(line)


if __name__ == "__main__":
    logging.disable(logging.ERROR)  # the failing task logs warnings
    asyncio.run(main())
