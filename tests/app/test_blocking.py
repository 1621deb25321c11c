"""example_app/blocking.py: a job on an isolated loop calling a blocking client
while the server's loop keeps answering, and the limit resized while running."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

import aiohttp_jobs
from example_app.blocking import LOOP, add_routes, register
from tests.helpers import blocked


def _app(**options: Any) -> web.Application:
    app = web.Application()
    aiohttp_jobs.setup(app, **options)
    add_routes(app)
    return app


async def test_blocking_job_runs_on_its_loop_while_the_server_answers(
    aiohttp_client: Any,
) -> None:
    app = _app()
    client = await aiohttp_client(app)
    resp = await client.post("/api/isolated/rates?batches=2&seconds=0.15")
    assert resp.status == 202
    body = await resp.json()
    assert body["loop"] == LOOP and body["name"] == "sync-rates"
    scheduler = app[aiohttp_jobs.SCHEDULER_KEY]
    job = scheduler.get_job(body["id"])
    # The server answers during the 300 ms the job blocks its own loop.
    probe = await client.get("/api/isolated/latency?seconds=0.2")
    assert probe.status == 200
    assert (await probe.json())["max_stall_ms"] < 100
    assert await job.wait() == {"batches": 2, "rates": 2}
    assert job.progress is not None and job.progress.message == "done"
    isolated = scheduler.loops[LOOP]
    await client.close()  # the application stops: the scheduler closes its loops
    assert not isolated.thread.is_alive() and isolated.loop.is_closed()


async def test_blocking_endpoints_refuse_bad_numbers(aiohttp_client: Any) -> None:
    client = await aiohttp_client(_app())
    for url in (
        "/api/isolated/rates?batches=x",
        "/api/isolated/rates?seconds=-1",
        "/api/isolated/latency?seconds=11",
    ):
        resp = await client.request("GET" if "latency" in url else "POST", url)
        assert resp.status == 400, url


async def test_resizing_the_limit_starts_pending_jobs_and_cancels_none(
    aiohttp_client: Any,
) -> None:
    app = _app(limit=1)
    client = await aiohttp_client(app)
    scheduler = app[aiohttp_jobs.SCHEDULER_KEY]
    gate = asyncio.Event()
    first = await scheduler.spawn(blocked(gate))
    second = await scheduler.spawn(blocked(gate))
    assert second.pending
    resp = await client.post("/api/scheduler/limit?limit=2")
    assert resp.status == 200
    assert await resp.json() == {
        "limit": 2,
        "changed": {"limit": [1, 2]},
        "active": 2,
        "pending": 0,
    }
    # Less room: the running jobs carry on.
    resp = await client.post("/api/scheduler/limit?limit=1")
    assert (await resp.json())["active"] == 2 and first.active and second.active
    resp = await client.post("/api/scheduler/limit?limit=none")
    assert (await resp.json())["limit"] is None
    for bad in ("0", "-3", "two", ""):
        resp = await client.post(f"/api/scheduler/limit?limit={bad}")
        assert resp.status == 400, bad
    assert scheduler.limit is None
    gate.set()


async def test_register_declares_the_loop_for_setup(aiohttp_client: Any) -> None:
    app = web.Application()
    options: dict[str, Any] = {"loops": ["mine"]}
    register(app, options)
    assert options == {"loops": ["mine", LOOP]}
    aiohttp_jobs.setup(app, **options)
    client = await aiohttp_client(app)
    resp = await client.post("/api/isolated/rates?batches=1&seconds=0")
    assert resp.status == 202
    scheduler = app[aiohttp_jobs.SCHEDULER_KEY]
    assert await scheduler.get_job((await resp.json())["id"]).wait() == {
        "batches": 1,
        "rates": 1,
    }
    assert scheduler.loops.declared == ("mine", LOOP)
