"""Tests of an application with aiohttp-jobs' pytest fixtures (docs/testing.md).

Copy this module into your tests: the fixtures ``jobs_clock``,
``jobs_scheduler``, ``jobs_task_runtime`` and ``jobs_client`` come with the
package (pytest loads its plugin by itself). Nothing here sleeps: time moves
when the test moves ``jobs_clock``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import Context, Scheduler, Tasks
from aiohttp_jobs.pytest_plugin import JobsClient, JobsTaskRuntime
from aiohttp_jobs.testing import FakeClock

# Without this line, pytest-asyncio's auto mode is needed.
pytestmark = pytest.mark.asyncio

# -- the application under test ---------------------------------------------

SENT = web.AppKey("sent", list)
tasks = Tasks()


@tasks.task(schedule="0 9 * * mon-fri", timezone="Europe/Paris")
async def digest(ctx: Context) -> None:
    """Every weekday at 09:00 in Paris: send the digest."""
    ctx.app[SENT].append(f"digest {ctx.scheduled_at:%a %H:%M} UTC")


@tasks.dynamic_task()
async def remind(ctx: Context) -> None:
    ctx.app[SENT].append(f"remind {ctx.params['user']}")


async def sign_up(request: web.Request) -> web.Response:
    user = (await request.json())["user"]
    runtime = aiohttp_jobs.get_tasks(request)
    await runtime.schedule_task(remind, user, interval=timedelta(days=1), user=user)
    return web.json_response({"user": user}, status=201)


def create_app() -> web.Application:
    app = web.Application()
    app[SENT] = []
    app.router.add_post("/sign-up", sign_up)
    return app


# -- the tests ----------------------------------------------------------------


async def test_delayed_job_runs_when_the_clock_says(
    jobs_scheduler: Scheduler, jobs_clock: FakeClock
) -> None:
    done: list[str] = []

    async def ping() -> None:
        done.append("ping")

    await jobs_scheduler.spawn(ping(), "ping", delay=60)
    await jobs_clock.advance(59)
    assert done == []
    await jobs_clock.advance(1)
    assert done == ["ping"]


@pytest.mark.jobs_clock(datetime(2024, 3, 29, 7, tzinfo=UTC))  # Friday
async def test_digest_runs_on_weekdays_only(
    jobs_client: JobsClient, jobs_clock: FakeClock
) -> None:
    client = await jobs_client(create_app(), tasks=tasks)
    await jobs_clock.advance(timedelta(days=3, hours=5))  # Fri 07:00 -> Mon 12:00
    assert client.app[SENT] == ["digest Fri 08:00 UTC", "digest Mon 07:00 UTC"]


async def test_sign_up_schedules_a_daily_reminder(
    jobs_client: JobsClient, jobs_clock: FakeClock
) -> None:
    client = await jobs_client(create_app(), tasks=tasks)
    resp = await client.post("/sign-up", json={"user": "ann"})
    assert resp.status == 201
    await jobs_clock.advance(timedelta(days=2))
    assert client.app[SENT].count("remind ann") == 2


@pytest.mark.jobs_scheduler(limit=1)
async def test_runtime_without_a_web_application(
    jobs_task_runtime: JobsTaskRuntime, jobs_scheduler: Scheduler, jobs_clock: FakeClock
) -> None:
    runtime = await jobs_task_runtime(tasks, app={SENT: []})
    assert jobs_scheduler.limit == 1
    await runtime.run_now("digest")
    await jobs_clock.advance(0)
    assert [job.name for job in jobs_scheduler.history.query()] == ["digest"]
