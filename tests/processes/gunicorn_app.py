"""An aiohttp application with one per-second cron task, for Gunicorn:

    JOBS_STORE=redis://... JOBS_LOG_DIR=/some/dir \\
        gunicorn tests.processes.gunicorn_app:app -k aiohttp.GunicornWebWorker -w 2

Each worker process builds its own application (no ``--preload``) and appends
``ready`` / ``done`` / ``stopping`` lines to ``<JOBS_LOG_DIR>/<pid>.jsonl``, as
``worker.py`` does.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import Context, Tasks
from aiohttp_jobs.stores import from_url

LOG_DIR = os.environ["JOBS_LOG_DIR"]

tasks = Tasks(store=from_url(os.environ["JOBS_STORE"], namespace="gunicorn"))


def write(ev: str, **extra: Any) -> None:
    pid = os.getpid()
    line = {"ev": ev, "instance": str(pid), "pid": pid, "t": time.time()}
    line.update(extra)
    path = os.path.join(LOG_DIR, f"{os.getpid()}.jsonl")
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


@tasks.task(schedule="* * * * * *", lease_duration=2.0)
async def every_second(ctx: Context) -> None:
    write(
        "done",
        task=ctx.task.name,
        key=ctx.name,
        run_id=ctx.run_id,
        fire_at=ctx.fire_at,
        attempt=ctx.attempt,
    )


async def announce(app: web.Application) -> AsyncIterator[None]:
    write("ready")  # after setup()'s context: the runtime is firing
    yield
    write("stopping")


async def hello(request: web.Request) -> web.Response:
    return web.Response(text=str(os.getpid()))


app = web.Application()
app.router.add_get("/", hello)
aiohttp_jobs.setup(app, tasks=tasks)
app.cleanup_ctx.append(announce)
