"""example_app/blocking.py: a job on an isolated loop calling a blocking client
while the server's loop keeps answering."""

from __future__ import annotations

from typing import Any

from aiohttp import web

import aiohttp_jobs
from example_app.blocking import LOOP, add_routes


def _app() -> web.Application:
    app = web.Application()
    aiohttp_jobs.setup(app)
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
