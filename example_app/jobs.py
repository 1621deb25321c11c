"""The aiohttp integration: an atomic endpoint, background jobs that report
progress, blocking work in the thread pool, and a failing job. Each job's
page and JSON are the dashboard's (``/jobs/jobs/{id}``, ``/jobs/api/jobs/{id}``):
the endpoints answer with links to them."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import Job, current_job

from .links import dashboard_links

ORDERS = web.AppKey("example_app.orders", list)


def register(app: web.Application, options: dict[str, Any]) -> None:
    app[ORDERS] = []
    app.router.add_post("/api/orders", create_order)
    app.router.add_post("/api/orders/unprotected", create_order_unprotected)
    app.router.add_get("/api/orders", list_orders)
    app.router.add_post("/api/reports", start_report)
    app.router.add_post("/api/thumbnails", start_thumbnail)
    app.router.add_post("/api/failing", start_failing)


def _float(request: web.Request, name: str, default: float, high: float) -> float:
    try:
        value = float(request.query.get(name, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be a number") from None
    if not 0 <= value <= high:
        raise web.HTTPBadRequest(text=f"{name} must be between 0 and {high}")
    return value


# -- atomic endpoint ------------------------------------------------------------------


async def _store_order(request: web.Request) -> web.Response:
    delay = _float(request, "delay", 0.5, 30)
    item = request.query.get("item", "book")
    await asyncio.sleep(delay)  # stands for the database write
    order = {"id": len(request.app[ORDERS]) + 1, "item": item, "at": time.time()}
    request.app[ORDERS].append(order)
    return web.json_response(order, status=201)


@aiohttp_jobs.atomic
async def create_order(request: web.Request) -> web.Response:
    """Atomic: the order is stored even if the client hangs up (?delay=0.5)."""
    return await _store_order(request)


async def create_order_unprotected(request: web.Request) -> web.Response:
    """Not atomic: hang up early (curl -m 0.1) and the order is lost."""
    return await _store_order(request)


async def list_orders(request: web.Request) -> web.Response:
    """The orders stored so far (also those whose client went away)."""
    return web.json_response(request.app[ORDERS])


# -- background jobs ------------------------------------------------------------------


async def build_report(steps: int, delay: float) -> dict[str, Any]:
    job = current_job()
    for step in range(steps):
        job.set_progress(step, steps, f"section {step + 1} of {steps}")
        await asyncio.sleep(delay)
    job.set_progress(steps, steps, "done")
    return {"sections": steps}


def make_thumbnail(size: int, seconds: float) -> str:
    """Blocking work (CPU and sleep): runs in the scheduler's thread pool."""
    current_job().set_progress(0, 1, "resizing")
    time.sleep(seconds)
    digest = hashlib.sha256(b"x" * size).hexdigest()
    current_job().set_progress(1, 1, "done")
    return digest[:16]


async def failing_job() -> None:
    await asyncio.sleep(0.05)
    raise RuntimeError("the payment provider said no")


def accepted(request: web.Request, job: Job[Any]) -> web.Response:
    """202 Accepted: the job, with links to its page and JSON on the dashboard."""
    links = dashboard_links(request, "job", job.id)
    return web.json_response(
        {"id": job.id, "name": job.name, "state": job.state.value, **links},
        status=202,
        headers={"Location": links["api"]} if links else None,
    )


async def start_report(request: web.Request) -> web.Response:
    """Background job reporting progress (?steps=5&delay=0.5); 503 when overloaded."""
    steps = int(_float(request, "steps", 5, 1000))
    delay = _float(request, "delay", 0.5, 30)
    job = await aiohttp_jobs.spawn(
        request, build_report(steps, delay), "report", tags=("reports",)
    )
    return accepted(request, job)


async def start_thumbnail(request: web.Request) -> web.Response:
    """Blocking job in the thread pool (?size=4096&seconds=0.5)."""
    size = int(_float(request, "size", 4096, 10_000_000))
    seconds = _float(request, "seconds", 0.5, 30)
    job = await aiohttp_jobs.get_scheduler(request).spawn_in_thread(
        make_thumbnail, size, seconds, name="thumbnail", tags=("images",)
    )
    return accepted(request, job)


async def start_failing(request: web.Request) -> web.Response:
    """A job that fails: its traceback is on its dashboard page."""
    job = await aiohttp_jobs.spawn(request, failing_job(), "charge-card")
    return accepted(request, job)
