"""Shared helpers of the server-side dashboard tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

import aiohttp_jobs
from aiohttp_jobs import dashboard

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]

#: What a browser sends with a same-origin form POST.
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def make_app(
    *,
    tasks: aiohttp_jobs.Tasks | None = None,
    clock: aiohttp_jobs.Clock | None = None,
    **options: Any,
) -> web.Application:
    """An application with a scheduler (whose shutdown cancels what still runs
    at once) and the dashboard at /jobs with *options*."""
    app = web.Application()
    aiohttp_jobs.setup(
        app, tasks=tasks, clock=clock, wait_timeout=0.0, close_timeout=1.0
    )
    dashboard.setup(app, **options)
    return app


def scheduler_of(client: TestClient[Any, Any]) -> aiohttp_jobs.Scheduler:
    app = client.app
    assert app is not None
    scheduler = aiohttp_jobs.get_scheduler_from_app(app)
    assert scheduler is not None
    return scheduler


async def returning(value: object) -> object:
    return value


async def failing(exc: BaseException) -> None:
    raise exc


async def forever() -> None:
    await asyncio.Event().wait()


async def finished(
    scheduler: aiohttp_jobs.Scheduler, coro: Any, name: str, **kw: Any
) -> aiohttp_jobs.Job[Any]:
    job = await scheduler.spawn(coro, name, **kw)
    try:
        await job.wait()
    except Exception:
        pass
    return job
