"""Scheduled tasks through the aiohttp app lifecycle: setup(app, tasks=tasks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import Context, JobState, TaskDefinitionError, Tasks
from aiohttp_jobs.stores import MemoryStore
from aiohttp_jobs.testing import FakeClock
from tests.tasks.support import T0

POOL = web.AppKey("pool", list)


def _app(tasks: Tasks, clock: FakeClock) -> web.Application:
    app = web.Application()
    app[POOL] = []
    aiohttp_jobs.setup(app, tasks=tasks, clock=clock)

    async def signup(request: web.Request) -> web.Response:
        runtime = aiohttp_jobs.get_tasks(request)
        run_ids = await runtime.fire("signed-up", user=request.match_info["user"])
        return web.json_response({"runs": run_ids})

    app.router.add_post("/signup/{user}", signup)
    return app


async def test_tasks_run_with_app_fixtures_and_keyword_endpoint(
    aiohttp_client: Any,
) -> None:
    tasks = Tasks()
    clock = FakeClock(T0)
    log: list[str] = []

    @tasks.fixture
    async def pool(app: web.Application) -> AsyncIterator[list[str]]:
        log.append("pool open")
        yield app[POOL]
        log.append("pool closed")

    @tasks.task(schedule="*/5 * * * *")
    async def sweep(ctx: Context) -> None:
        ctx.pool.append(f"sweep {ctx.scheduled_at:%H:%M}")

    @tasks.task(keyword="signed-up")
    async def welcome(ctx: Context) -> str:
        ctx.pool.append(f"welcome {ctx.params['user']}")
        return "sent"

    app = _app(tasks, clock)
    client = await aiohttp_client(app)
    assert log == ["pool open"]
    resp = await client.post("/signup/ann")
    assert resp.status == 200
    assert await resp.json() == {"runs": ["welcome@1704067200000"]}
    await clock.advance(timedelta(minutes=10))
    assert app[POOL] == ["welcome ann", "sweep 00:05", "sweep 00:10"]
    scheduler = aiohttp_jobs.get_scheduler_from_app(app)
    assert scheduler is not None
    [job] = scheduler.history.query(name="welcome")
    assert (job.state, job.result()) == (JobState.SUCCEEDED, "sent")
    await client.close()
    assert log == ["pool open", "pool closed"]


async def test_a_module_level_registry_serves_several_apps_independently(
    aiohttp_client: Any,
) -> None:
    tasks = Tasks()
    runs: list[str] = []

    @tasks.dynamic_task()
    async def remind(ctx: Context) -> None:
        runs.append(ctx.name)

    for user in ("ann", "bob"):
        clock = FakeClock(T0)
        app = _app(tasks, clock)
        client = await aiohttp_client(app)
        runtime = aiohttp_jobs.get_tasks(app)
        assert [i.key for i in await runtime.list_tasks()] == []  # a fresh store
        await runtime.schedule_task(remind, user, execute_at=T0 + timedelta(hours=1))
        await clock.advance(timedelta(hours=2))
        await client.close()
    assert runs == ["remind:ann", "remind:bob"]


async def test_include_combines_registries() -> None:
    shared_store = MemoryStore()
    app_tasks = Tasks(store=shared_store)
    feature = Tasks()

    @feature.task(interval=5)
    async def one(ctx: Context) -> None:
        pass

    @feature.fixture
    async def res(app: object) -> AsyncIterator[int]:
        yield 1

    app_tasks.include(feature)
    app_tasks.include(feature)  # idempotent
    assert list(app_tasks.tasks) == ["one"] and list(app_tasks.fixtures) == ["res"]
    other = Tasks()
    other.task(name="one", interval=9)(one)
    with pytest.raises(TaskDefinitionError, match="declared in both"):
        app_tasks.include(other)
