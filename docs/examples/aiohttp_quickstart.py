"""aiohttp integration in one file: setup, @atomic, spawn with back-pressure,
shield, and a sub-application that uses the root's scheduler.

Run it: ``python docs/examples/aiohttp_quickstart.py`` (127.0.0.1:8080).
tests/docs/test_web.py runs the same application, also through a SIGTERM with
payments in flight: every charged order gets its receipt.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

import aiohttp_jobs

DB = web.AppKey("db", list)
OUTBOX = web.AppKey("outbox", list)


async def charge(order: dict[str, Any]) -> None:
    await asyncio.sleep(0.01)  # stands for the payment provider


async def send_receipt(outbox: list[dict[str, Any]], order: dict[str, Any]) -> None:
    await asyncio.sleep(0.01)  # stands for an SMTP call
    outbox.append({"to": order["email"], "order": order["id"]})


@aiohttp_jobs.atomic
async def pay(request: web.Request) -> web.Response:
    """Runs to the end even if the client hangs up or the server stops
    (within wait_timeout); the client gets this response if still there."""
    order = await request.json()
    await charge(order)
    request.app[DB].append(order)
    # Fire and forget: a job of the application's scheduler. A shutdown that
    # began during the charge still runs it (the drain admits what an atomic
    # handler spawns). With reject_when_full=True an overloaded scheduler
    # answers 503 + Retry-After.
    receipt = send_receipt(request.app[OUTBOX], order)
    await aiohttp_jobs.spawn(request, receipt, "send-receipt", reject_when_full=True)
    return web.json_response({"paid": order["id"]}, status=201)


async def audit(request: web.Request) -> web.Response:
    # Only this part is protected; the rest of the handler stays cancellable.
    entry = f"{request.method} {request.path}"
    await aiohttp_jobs.shield(request, write_audit(request.app, entry))
    return web.Response(text="logged")


async def write_audit(app: web.Application, entry: str) -> None:
    await asyncio.sleep(0.01)
    app[DB].append({"audit": entry})


async def admin_jobs(request: web.Request) -> web.Response:
    scheduler = aiohttp_jobs.get_scheduler(request)  # the root's, from a sub-app
    return web.json_response(
        [{"id": job.id, "name": job.name, "state": str(job.state)} for job in scheduler]
    )


def create_app() -> web.Application:
    app = web.Application()
    app[DB] = []
    app[OUTBOX] = []
    aiohttp_jobs.setup(app, limit=100, wait_timeout=30, close_timeout=5)
    app.router.add_post("/pay", pay)
    app.router.add_post("/audit", audit)
    admin = web.Application()
    admin.router.add_get("/jobs", admin_jobs)
    app.add_subapp("/admin", admin)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=8080)
