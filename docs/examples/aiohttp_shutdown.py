"""What a graceful shutdown does to work in flight, step by step.

A request to an atomic handler is running when the server is told to stop:
it finishes and its client gets the answer. A job that would run longer than
``wait_timeout`` is cancelled and logged. Run it:
``python docs/examples/aiohttp_shutdown.py`` (tests/docs/test_web.py does).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web

import aiohttp_jobs


@aiohttp_jobs.atomic
async def save(request: web.Request) -> web.Response:
    await aiohttp_jobs.spawn(request, asyncio.sleep(3600), "too-long")
    await asyncio.sleep(0.2)  # still running when the shutdown starts
    return web.Response(text="saved")


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=0.5, close_timeout=0.1)
    app.router.add_post("/save", save)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    async with aiohttp.ClientSession() as session:
        request = asyncio.ensure_future(session.post(f"http://127.0.0.1:{port}/save"))
        await asyncio.sleep(0.05)
        # What web.run_app does on SIGINT/SIGTERM:
        await runner.cleanup()
        response = await request
        print("client got:", response.status, await response.text())  # noqa: T201
        # -> client got: 200 saved
        # and, logged: shutdown: job 'too-long' (id=...) cancelled after running ...


if __name__ == "__main__":
    asyncio.run(main())
