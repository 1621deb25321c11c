"""A production application factory (docs/deployment.md): the task store from
the environment, health checks for the load balancer, the dashboard behind a
reverse proxy, and timeouts that fit inside the process manager's.

Serve it with Gunicorn (``docs/examples/gunicorn_conf.py``)::

    JOBS_STORE=redis://redis:6379/0 DASHBOARD_TOKEN=... \\
        gunicorn 'deployment_app:create_app()' -c gunicorn_conf.py

tests/docs/test_deployment.py runs it and checks the numbers agree.
"""

from __future__ import annotations

import hmac
import os

from aiohttp import web

import aiohttp_jobs
import aiohttp_jobs.dashboard
from aiohttp_jobs import Context, Tasks

#: Seconds the graceful shutdown gives jobs and @atomic handlers to finish...
WAIT_TIMEOUT = 25.0
#: ...then seconds for what was cancelled to wind down.
CLOSE_TIMEOUT = 5.0

tasks = Tasks(store=os.environ.get("JOBS_STORE", "memory://"))


@tasks.task(schedule="*/5 * * * *")
async def sync_prices(ctx: Context) -> None:
    """Every 5 minutes, once across all workers and hosts sharing the store."""


def authorize(request: web.Request, action: str) -> bool:
    """The dashboard behind a reverse proxy: the proxy authenticates the user
    and adds a shared secret; without ``authorize=`` the dashboard refuses
    every request that carries Forwarded / X-Forwarded-* headers."""
    token = os.environ.get("DASHBOARD_TOKEN", "")
    sent = request.headers.get("X-Dashboard-Token", "")
    return bool(token) and hmac.compare_digest(sent, token)


async def index(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def create_app() -> web.Application:
    app = web.Application()
    aiohttp_jobs.setup(
        app,
        tasks=tasks,
        wait_timeout=WAIT_TIMEOUT,
        close_timeout=CLOSE_TIMEOUT,
        health="/health",  # GET /health/live and /health/ready
    )
    aiohttp_jobs.dashboard.setup(app, prefix="/jobs", authorize=authorize)
    app.router.add_get("/", index)
    return app
