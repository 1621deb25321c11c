"""Tasks on a shared store: every instance of the application runs this module,
and each occurrence runs in one of them.

Run two instances on one SQLite file (or one Redis) and watch each nightly
report run once::

    JOBS_STORE=sqlite:///tasks.db python docs/examples/stores_shared.py 8080
    JOBS_STORE=sqlite:///tasks.db python docs/examples/stores_shared.py 8081

tests/processes/test_docs_example.py runs it on SQLite and on Redis.
"""

from __future__ import annotations

import os
import sys

from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import Context, Tasks
from aiohttp_jobs.stores import from_url


class Ledger:
    """Stands for a downstream system that accepts a task's writes only with a
    fencing token no lower than the highest it has seen for that task: a run
    that lost its lease (its instance froze) cannot overwrite the run that took
    over."""

    def __init__(self) -> None:
        self.highest: dict[str, int] = {}
        self.rows: dict[str, str] = {}

    def write(self, task: str, fence: int, row: str) -> bool:
        if fence < self.highest.get(task, 0):
            return False  # a stale writer: refused
        self.highest[task] = fence
        self.rows[task] = row
        return True


LEDGER = web.AppKey("ledger", Ledger)

# -- choosing a store
# A URL (memory://, sqlite:///path, redis://host:port/db) or a store; the
# namespace keeps this application apart from others on the same Redis.
STORE = os.environ.get("JOBS_STORE", "sqlite:///tasks.db")
tasks = Tasks(store=from_url(STORE, namespace="reports"))
# --


@tasks.task(schedule="0 2 * * *", lease_duration=120, heartbeat=30)
async def nightly_report(ctx: Context) -> None:
    # ctx.run_id is the same on every instance: a natural idempotency key
    ledger: Ledger = ctx.app[LEDGER]
    ledger.write(ctx.name, ctx.fence, f"report {ctx.run_id} attempt {ctx.attempt}")


async def tasks_view(request: web.Request) -> web.Response:
    infos = await aiohttp_jobs.get_tasks(request).list_tasks()
    return web.json_response(
        {
            info.key: None
            if info.next_fire_at is None
            else info.next_fire_at.isoformat()
            for info in infos
        }
    )


def create_app() -> web.Application:
    app = web.Application()
    app[LEDGER] = Ledger()
    app.router.add_get("/tasks", tasks_view)
    aiohttp_jobs.setup(app, tasks=tasks)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), port=int(sys.argv[1]) if len(sys.argv) > 1 else 8080)
