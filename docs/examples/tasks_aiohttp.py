"""Scheduled tasks in an aiohttp application: declared next to the handlers,
given the app's database as a fixture, fired by an endpoint, and run on the
app's scheduler (so they appear in its history).

Run it: ``python docs/examples/tasks_aiohttp.py`` and try
``curl -X POST localhost:8080/orders/7`` then ``curl localhost:8080/tasks``.
tests/test_tasks_docs.py drives it with a FakeClock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import Context, Tasks


class Database:
    """Stands for the application's connection pool."""

    def __init__(self) -> None:
        self.orders: dict[int, str] = {}
        self.closed = False

    async def close(self) -> None:
        self.closed = True


DB = web.AppKey("db", Database)
RUNS = web.AppKey("runs", list)
tasks = Tasks()


@tasks.fixture
async def db(app: web.Application) -> AsyncIterator[Database]:
    yield app[DB]  # the pool the app already owns: wired once, not twice


@tasks.middleware
async def log_runs(ctx: Context, call_next: Any) -> object:
    ctx.app[RUNS].append(ctx.name)
    return await call_next()


@tasks.task(schedule="*/15 * * * *")
async def archive_shipped(ctx: Context) -> int:
    shipped = [n for n, state in ctx.db.orders.items() if state == "shipped"]
    for number in shipped:
        ctx.db.orders[number] = "archived"
    return len(shipped)


@tasks.task(keyword="order-placed", retries=3)
async def ship(ctx: Context) -> None:
    number = ctx.params["number"]
    assert isinstance(number, int)  # what place_order() fires with
    ctx.db.orders[number] = "shipped"


async def place_order(request: web.Request) -> web.Response:
    number = int(request.match_info["number"])
    request.app[DB].orders[number] = "placed"
    await aiohttp_jobs.get_tasks(request).fire("order-placed", number=number)
    return web.json_response({"order": number}, status=202)


async def show_tasks(request: web.Request) -> web.Response:
    infos = await aiohttp_jobs.get_tasks(request).list_tasks()
    return web.json_response(
        {
            i.key: None if i.next_fire_at is None else i.next_fire_at.isoformat()
            for i in infos
        }
    )


async def open_db(app: web.Application) -> AsyncIterator[None]:
    app[DB] = Database()
    yield
    await app[DB].close()


def create_app(**setup_options: Any) -> web.Application:
    app = web.Application()
    app[RUNS] = []
    app.cleanup_ctx.append(open_db)  # before setup(): the pool outlives the tasks
    aiohttp_jobs.setup(app, tasks=tasks, **setup_options)
    app.router.add_post("/orders/{number}", place_order)
    app.router.add_get("/tasks", show_tasks)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=8080)
