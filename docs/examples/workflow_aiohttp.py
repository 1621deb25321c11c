"""A workflow run from an aiohttp handler, on the application's scheduler.

``POST /orders/{id}/ship`` runs a small graph (reserve stock and charge the card
in parallel, then print the label, then e-mail the customer) as jobs of the
app's scheduler: they obey its limits and priorities and show up in its history.
``@atomic`` lets the run finish even if the client hangs up.
``GET /workflows`` lists this application's workflows (the registry of its
scheduler); ``GET /workflows/{id}.svg`` draws one with its steps' current states.

Run it: ``python docs/examples/workflow_aiohttp.py`` (127.0.0.1:8080).
tests/docs/test_workflows.py runs the same application.
"""

from __future__ import annotations

import asyncio
from collections import deque

from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import Step, Workflow

SHIPPED = web.AppKey("shipped", list)
#: The scheduler's registry holds workflows weakly: keep the last ones alive.
RECENT = web.AppKey("recent_workflows", deque)


async def reserve_stock(order: int) -> str:
    await asyncio.sleep(0.01)
    return f"stock for {order}"


async def charge_card(order: int) -> str:
    await asyncio.sleep(0.01)
    return f"charged {order}"


async def print_label(order: int) -> str:
    await asyncio.sleep(0.01)
    return f"label {order}"


async def email_customer(order: int) -> None:
    await asyncio.sleep(0.01)


def shipping(order: int) -> Workflow:
    reserve = Step(reserve_stock(order), label="reserve-stock")
    charge = Step(charge_card(order), label="charge-card", priority="high")
    label = Step(print_label(order), label="print-label", requires=(reserve, charge))
    email = Step(email_customer(order), label="email", requires=label, critical=False)
    return Workflow(
        reserve, charge, label, email, label=f"ship-{order}", timeout=30, window=4
    )


@aiohttp_jobs.atomic
async def ship(request: web.Request) -> web.Response:
    order = int(request.match_info["order"])
    workflow = shipping(order)
    request.app[RECENT].append(workflow)
    ok = await workflow.run(scheduler=aiohttp_jobs.get_scheduler(request))
    if ok:
        request.app[SHIPPED].append(order)
    return web.json_response(
        {"ok": ok, "workflow": workflow.id, "why": workflow.why()},
        status=200 if ok else 500,
    )


async def workflows(request: web.Request) -> web.Response:
    scheduler = aiohttp_jobs.get_scheduler(request)
    return web.json_response(
        [
            {"id": w.id, "label": w.label, "state": w.state.value}
            for w in Workflow.of_scheduler(scheduler)
        ]
    )


async def graph(request: web.Request) -> web.Response:
    scheduler = aiohttp_jobs.get_scheduler(request)
    workflow = Workflow.find(request.match_info["workflow_id"], scheduler)
    if workflow is None:
        raise web.HTTPNotFound(text="no such workflow")
    return web.Response(text=workflow.to_svg(), content_type="image/svg+xml")


def create_app() -> web.Application:
    app = web.Application()
    app[SHIPPED] = []
    app[RECENT] = deque(maxlen=20)
    aiohttp_jobs.setup(app, limit=20)
    app.router.add_post("/orders/{order:\\d+}/ship", ship)
    app.router.add_get("/workflows", workflows)
    app.router.add_get("/workflows/{workflow_id}.svg", graph)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=8080)
