"""Demo traffic, so that the dashboard at /jobs has something to show from the
first minute: every few seconds a scheduled task spawns a report that reports
its progress, a thumbnail in the thread pool, a digest mail due a few seconds
later (a delayed spawn), now and then a payment that
fails, a sign-up (which fires the keyword task ``welcome``) and a release
workflow whose graph changes colour step by step. At start it also schedules
a recurring dynamic instance of ``remind`` (a stand-up reminder every weekday).

``python -m example_app`` turns it on; ``--no-demo`` (and ``create_app()``,
which the tests use) leave it off.
"""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import Context, SchedulerClosedError, Tasks

from .jobs import build_report, failing_job, make_thumbnail
from .tasks import remind
from .workflows import release, remember

#: Seconds between two bursts of demo traffic.
EVERY = 8.0
#: Seconds each step of the demo's work takes (a report has six).
DELAY = 0.75

USERS = ("ada", "grace", "edsger", "barbara", "donald")
BURSTS = web.AppKey("example_app.demo.bursts", itertools.count)

tasks = Tasks()


def register(app: web.Application, options: dict[str, Any]) -> None:
    app[BURSTS] = itertools.count(1)
    options.setdefault("tasks", Tasks()).include(tasks)
    app.on_startup.append(_schedule_standup)


async def _schedule_standup(app: web.Application) -> None:
    try:
        await aiohttp_jobs.get_tasks(app).schedule_task(
            remind,
            "ada.standup",
            schedule="0 9 * * 1-5",
            timezone="Europe/London",
            user="ada",
            text="stand-up in the small room",
        )
    except SchedulerClosedError:  # pragma: no cover - stopped while starting
        pass


@tasks.task(name="demo-traffic", interval=EVERY)
async def demo_traffic(ctx: Context) -> str:
    """Spawn a burst of jobs: what users of the application would cause."""
    burst = next(ctx.app[BURSTS])
    scheduler = aiohttp_jobs.get_scheduler_from_app(ctx.app)
    if scheduler is None:  # pragma: no cover - setup() always made one
        return "no scheduler"
    await scheduler.spawn(
        build_report(steps=6, delay=DELAY), "report", tags=("reports", "demo")
    )
    await scheduler.spawn_in_thread(
        make_thumbnail, 4096, 2 * DELAY, name="thumbnail", tags=("images", "demo")
    )
    # Scheduled for later: it waits in the "scheduled" column until then.
    await scheduler.spawn(
        build_report(steps=2, delay=DELAY),
        "digest-mail",
        tags=("demo",),
        priority="low",
        delay=EVERY / 2,
    )
    if burst % 3 == 0:
        await scheduler.spawn(failing_job(), "charge-card", priority="high")
    if burst % 4 == 1:
        await aiohttp_jobs.get_tasks(ctx.app).fire(
            "user-signed-up", user=USERS[burst // 4 % len(USERS)]
        )
    if burst % 5 == 1:  # this run of the task lasts as long as the workflow
        workflow = release(delay=DELAY, fail="db1" if burst % 10 == 6 else None)
        remember(ctx.app, workflow)
        ok = await workflow.run(scheduler=scheduler)
        return f"burst {burst}: release {'deployed' if ok else 'failed'}"
    return f"burst {burst}"
