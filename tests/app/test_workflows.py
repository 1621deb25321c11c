"""The example application's workflow module: the atomic endpoint and the
scheduled task, seen through the dashboard's JSON API."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp_jobs
from example_app.app import create_app


async def _workflows(client: Any) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (
        await (await client.get("/jobs/api/workflows")).json()
    )["workflows"]
    return listed


async def test_release_endpoint_runs_the_workflow_on_the_app_scheduler(
    aiohttp_client: Any,
) -> None:
    app = create_app()
    client = await aiohttp_client(app)
    resp = await client.post("/api/workflows/release?delay=0")
    assert resp.status == 200
    body = await resp.json()
    assert body["ok"] is True and body["state"] == "succeeded"
    assert (
        "gate  -> ['unit-tests: ok', 'changelog: ok', 'approvals: ok']"
        in (body["listing"])
    )
    scheduler = aiohttp_jobs.get_scheduler_from_app(app)
    assert scheduler is not None
    jobs = scheduler.history.query(name="db1")
    assert jobs and jobs[0].tags[0] == f"workflow:{body['id']}"
    assert body["api"] == f"/jobs/api/workflows/{body['id']}"
    detail = await (await client.get(body["api"])).json()
    steps = detail["describe"]["steps"]
    labels = [step["label"] for step in steps]
    assert labels[:3] == ["unit-tests", "changelog", "approvals"]
    heartbeat = next(s for s in steps if s["label"] == "heartbeat")
    assert heartbeat["state"] == "cancelled"
    page = await client.get(body["page"])
    assert page.status == 200 and "wave-web" in await page.text()


async def test_release_endpoint_reports_a_failed_deployment(
    aiohttp_client: Any,
) -> None:
    client = await aiohttp_client(create_app())
    resp = await client.post("/api/workflows/release?delay=0&fail=web2")
    assert resp.status == 500
    body = await resp.json()
    assert body["ok"] is False
    assert "critical step 'wave-web' failed" in body["why"]
    assert "web2 refused the deployment" in body["why"]
    listed = await _workflows(client)
    assert [w["id"] for w in listed] == [body["id"]]
    assert listed[0]["state"] == "failed"
    assert (await client.get("/jobs/api/workflows/unknown")).status == 404
    assert (await client.post("/api/workflows/release?delay=x")).status == 400


async def test_scheduled_task_runs_the_release(aiohttp_client: Any) -> None:
    app = create_app()
    client = await aiohttp_client(app)
    runtime = aiohttp_jobs.get_tasks(app)
    await runtime.run_now("release-pipeline")
    for _ in range(200):
        listed = await _workflows(client)
        if listed and listed[0]["state"] == "succeeded":
            break
        await asyncio.sleep(0.01)
    assert [w["label"] for w in listed] == ["release"]
    assert listed[0]["state"] == "succeeded"


async def test_each_application_lists_only_its_own_workflows(
    aiohttp_client: Any,
) -> None:
    first = await aiohttp_client(create_app())
    second = await aiohttp_client(create_app())
    ran = await (await first.post("/api/workflows/release?delay=0")).json()
    assert [w["id"] for w in await _workflows(first)] == [ran["id"]]
    assert await _workflows(second) == []
    assert (await second.get(f"/jobs/api/workflows/{ran['id']}")).status == 404
