"""Workflows: a release pipeline (three checks in parallel, then two deploy
waves in sequence, then a notification, with a heartbeat step alongside) run
from an atomic endpoint and, every hour, from a scheduled task. The dashboard's
workflows page (``/jobs/workflows``) shows the recent runs, each with its graph
live."""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from typing import Any

from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import Context, Sequence, Step, Tasks, Workflow, current_job

from .links import dashboard_links

#: The scheduler lists its workflows while something references them: the
#: application keeps its last ones alive here.
RECENT = web.AppKey("example_app.workflows", deque)
KEEP = 20


def register(app: web.Application, options: dict[str, Any]) -> None:
    app[RECENT] = deque(maxlen=KEEP)
    app.router.add_post("/api/workflows/release", start_release)
    # Share the application's task registry with other feature modules.
    tasks: Tasks = options.setdefault("tasks", Tasks())
    tasks.task(name="release-pipeline", interval=3600)(scheduled_release)


# -- the pipeline ------------------------------------------------------------------


async def check(name: str, delay: float) -> str:
    await asyncio.sleep(delay)  # stands for a call to CI, the changelog, ...
    return f"{name}: ok"


async def gate(*checks: Step[str]) -> list[str]:
    return [step.result() for step in checks]


async def deploy(host: str, delay: float, fail: str | None) -> str:
    job = current_job()  # every step is a job: it can report progress
    job.set_progress(0, 1, f"deploying {host}")
    await asyncio.sleep(delay)
    if host == fail:
        raise ConnectionError(f"{host} refused the deployment")
    job.set_progress(1, 1, "deployed")
    return f"{host}: deployed"


async def heartbeat(delay: float) -> None:
    job = current_job()
    beats = 0
    while True:
        beats += 1
        job.set_progress(beats, None, "alive")
        await asyncio.sleep(delay)


async def notify(delay: float) -> str:
    await asyncio.sleep(delay)
    return "team notified"


def release(*, delay: float, fail: str | None) -> Workflow:
    checks = [
        Step(check(name, delay), label=name)
        for name in ("unit-tests", "changelog", "approvals")
    ]
    go = Step(functools.partial(gate, *checks), label="gate", requires=checks)
    waves = Sequence(
        Workflow(
            *(Step(deploy(h, delay, fail), label=h) for h in ("web1", "web2", "web3")),
            label="wave-web",
            window=2,
        ),
        Workflow(Step(deploy("db1", delay, fail), label="db1"), label="wave-db"),
        requires=go,
    )
    return Workflow(
        *checks,
        go,
        waves,
        Step(notify(delay), label="notify", requires=waves, critical=False),
        Step(heartbeat(delay), label="heartbeat", forever=True, critical=False),
        label="release",
        timeout=60,
        critical=False,  # run() answers False instead of raising
    )


def remember(app: web.Application, workflow: Workflow) -> None:
    app[RECENT].append(workflow)


def _summary(request: web.Request, workflow: Workflow) -> dict[str, Any]:
    return {
        "id": workflow.id,
        "label": workflow.label,
        "state": workflow.state.value,
        "why": workflow.why(),
        **dashboard_links(request, "workflow", workflow.id),
    }


# -- endpoints and the scheduled task ------------------------------------------------


@aiohttp_jobs.atomic
async def start_release(request: web.Request) -> web.Response:
    """Atomic: run the release workflow (?delay=0.05&fail=db1) and report it."""
    try:
        delay = float(request.query.get("delay", 0.05))
    except ValueError:
        raise web.HTTPBadRequest(text="delay must be a number") from None
    if not 0 <= delay <= 5:
        raise web.HTTPBadRequest(text="delay must be between 0 and 5")
    workflow = release(delay=delay, fail=request.query.get("fail"))
    remember(request.app, workflow)
    ok = await workflow.run(scheduler=aiohttp_jobs.get_scheduler(request))
    body = {**_summary(request, workflow), "ok": ok, "listing": workflow.listing()}
    return web.json_response(body, status=200 if ok else 500)


async def scheduled_release(ctx: Context) -> bool:
    scheduler = aiohttp_jobs.get_scheduler_from_app(ctx.app)
    workflow = release(delay=0.05, fail=None)
    remember(ctx.app, workflow)
    return await workflow.run(scheduler=scheduler)
