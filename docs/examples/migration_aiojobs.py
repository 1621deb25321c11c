# ruff: noqa: T201 - this script shows its results on stdout
"""Code written for aiojobs, with its imports changed (docs/migration/aiojobs.md).

Run it: ``python docs/examples/migration_aiojobs.py``.
tests/docs/test_migration.py runs it and checks what it prints.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

# Was: from aiojobs import Scheduler
from aiohttp_jobs import Scheduler

# Was: from aiojobs.aiohttp import atomic, get_scheduler, setup, spawn
from aiohttp_jobs.aiohttp import atomic, get_scheduler, setup, spawn


async def send(outbox: list[str], text: str) -> None:
    await asyncio.sleep(0.01)  # stands for an SMTP call
    outbox.append(text)


OUTBOX = web.AppKey("outbox", list)


@atomic
async def order(request: web.Request) -> web.Response:
    await spawn(request, send(request.app[OUTBOX], "receipt"))
    return web.Response(text="ordered")


async def jobs(request: web.Request) -> web.Response:
    scheduler = get_scheduler(request)
    return web.Response(text=f"limit={scheduler.limit} closed={scheduler.closed}")


async def main() -> None:
    # The aiojobs scheduler API, unchanged.
    outbox: list[str] = []
    async with Scheduler(limit=2, pending_limit=10, close_timeout=1) as scheduler:
        for n in range(3):
            await scheduler.spawn(send(outbox, f"mail {n}"))
        print(f"limit={scheduler.limit} active={scheduler.active_count}", end=" ")
        print(f"pending={scheduler.pending_count}")
        job = await scheduler.spawn(send(outbox, "last"))
        await job.wait()
    print(f"sent {len(outbox)} mails; closed={scheduler.closed}")

    # The aiojobs.aiohttp API, unchanged.
    app = web.Application()
    app[OUTBOX] = []
    setup(app)
    app.router.add_post("/order", order)
    app.router.add_get("/jobs", jobs)
    async with TestClient(TestServer(app)) as client:
        print(await (await client.post("/order")).text())
        print(await (await client.get("/jobs")).text())
    print(f"after shutdown: {app[OUTBOX]}")


if __name__ == "__main__":
    asyncio.run(main())
