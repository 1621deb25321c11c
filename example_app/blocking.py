"""Work that blocks, kept off the server's loop: a job on an isolated event loop
that calls a synchronous (blocking) client, a probe that shows the server's own
loop still answering meanwhile, and the scheduler's limit resized while it runs.

    curl -X POST 'localhost:8080/api/isolated/rates?batches=5&seconds=0.5'
    curl 'localhost:8080/api/isolated/latency?seconds=1'   # while it runs
    curl -X POST 'localhost:8080/api/scheduler/limit?limit=20'
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import current_job

from .links import dashboard_links

#: The isolated loop the blocking jobs run on (started with its first job).
LOOP = "legacy-clients"


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/isolated/rates", start_rates)
    app.router.add_get("/api/isolated/latency", loop_latency)
    app.router.add_post("/api/scheduler/limit", resize_limit)


def register(app: web.Application, options: dict[str, Any]) -> None:
    """The feature-module hook of ``example_app.app``: the routes, and the
    isolated loop declared so it starts with the application's first job."""
    add_routes(app)
    loops = list(options.get("loops", ()))
    if LOOP not in loops:
        options["loops"] = [*loops, LOOP]


def _number(request: web.Request, name: str, default: float, high: float) -> float:
    try:
        value = float(request.query.get(name, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be a number") from None
    if not 0 <= value <= high:
        raise web.HTTPBadRequest(text=f"{name} must be between 0 and {high}")
    return value


def fetch_rates(batch: int, seconds: float) -> dict[str, float]:
    """Stands for a synchronous client library: it blocks for *seconds*."""
    time.sleep(seconds)
    return {f"EUR/X{batch}": 1.0 + batch / 100}


async def sync_rates(batches: int, seconds: float) -> dict[str, Any]:
    """Runs on the isolated loop: each blocking call stalls that loop only."""
    job = current_job()
    rates: dict[str, float] = {}
    for batch in range(batches):
        job.set_progress(batch, batches, f"batch {batch + 1} of {batches}")
        rates.update(fetch_rates(batch, seconds))
        await asyncio.sleep(0)  # where a cancellation (job.close()) gets in
    job.set_progress(batches, batches, "done")
    return {"batches": batches, "rates": len(rates)}


async def start_rates(request: web.Request) -> web.Response:
    """Job on an isolated loop calling a blocking client (?batches=5&seconds=0.5)."""
    batches = int(_number(request, "batches", 5, 100))
    seconds = _number(request, "seconds", 0.5, 10)
    scheduler = aiohttp_jobs.get_scheduler(request)
    try:
        job = scheduler.spawn_nowait(
            sync_rates(batches, seconds), "sync-rates", tags=("rates",), loop=LOOP
        )
    except (aiohttp_jobs.SchedulerFullError, aiohttp_jobs.SchedulerClosedError):
        raise web.HTTPServiceUnavailable(
            text="too busy, try again", headers={"Retry-After": "1"}
        ) from None
    links = dashboard_links(request, "job", job.id)
    return web.json_response(
        {"id": job.id, "name": job.name, "state": job.state.value, "loop": LOOP}
        | links,
        status=202,
        headers={"Location": links["api"]} if links else None,
    )


async def loop_latency(request: web.Request) -> web.Response:
    """The server loop's longest stall over ?seconds=1 (try it while a job blocks)."""
    seconds = _number(request, "seconds", 1, 10)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    longest = 0.0
    while loop.time() < end:
        before = loop.time()
        await asyncio.sleep(0.001)
        longest = max(longest, loop.time() - before)
    return web.json_response({"seconds": seconds, "max_stall_ms": longest * 1000})


async def resize_limit(request: web.Request) -> web.Response:
    """Resize the running scheduler's limit (?limit=20, or ?limit=none)."""
    raw = request.query.get("limit", "")
    limit: int | None
    if raw.lower() == "none":
        limit = None
    else:
        try:
            limit = int(raw)
        except ValueError:
            raise web.HTTPBadRequest(text="limit must be an integer or none") from None
    scheduler = aiohttp_jobs.get_scheduler(request)
    try:
        changes = scheduler.reconfigure(limit=limit)
    except aiohttp_jobs.ConfigError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    # More room starts pending jobs at once; less never cancels a running one.
    return web.json_response(
        {
            "limit": scheduler.limit,
            "changed": {name: list(pair) for name, pair in changes.items()},
            "active": scheduler.active_count,
            "pending": scheduler.pending_count,
        }
    )
