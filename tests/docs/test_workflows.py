"""The examples of docs/workflows.md run, and do what the page says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.docs.examples import load_example, run_example

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"


def test_basics_example_prints_what_the_page_shows() -> None:
    lines = run_example("workflow_basics")
    assert lines[3] == "4 C- succeeded merge  -> 6  requires 1, 2, 3"
    assert "chained: heartbeat beat several times, then stopped" in lines
    assert any(
        line.startswith("rollout failed:")
        and "critical step 'wave-2' failed" in line
        and "ConnectionError('db3 refused the connection')" in line
        for line in lines
    )
    assert "steps: 2 failed, 5 succeeded" in lines
    assert lines[-1] == "timed out: True"


async def test_aiohttp_example_runs_steps_on_the_app_scheduler(
    aiohttp_client: Any,
) -> None:
    example = load_example("workflow_aiohttp")
    app = example.create_app()
    client = await aiohttp_client(app)
    resp = await client.post("/orders/7/ship")
    assert resp.status == 200
    body = await resp.json()
    assert body["ok"] is True and "every step finished" in body["why"]
    assert app[example.SHIPPED] == [7]
    scheduler = app[example.aiohttp_jobs.SCHEDULER_KEY]
    names = {job.name for job in scheduler.history.query()}
    assert {"reserve-stock", "charge-card", "print-label", "email"} <= names
    tagged = scheduler.history.query()[0].tags
    assert tagged == (f"workflow:{body['workflow']}",)
    svg = await client.get(f"/workflows/{body['workflow']}.svg")
    assert svg.status == 200 and svg.content_type == "image/svg+xml"
    assert 'data-state="succeeded"' in await svg.text()
    assert (await client.get("/workflows/nope.svg")).status == 404
    listed = await (await client.get("/workflows")).json()
    assert listed == [{"id": body["workflow"], "label": "ship-7", "state": "succeeded"}]


async def test_each_application_lists_only_its_own_workflows(
    aiohttp_client: Any,
) -> None:
    example = load_example("workflow_aiohttp")
    first = await aiohttp_client(example.create_app())
    second = await aiohttp_client(example.create_app())
    shipped = await (await first.post("/orders/1/ship")).json()
    assert [w["id"] for w in await (await first.get("/workflows")).json()] == [
        shipped["workflow"]
    ]
    assert await (await second.get("/workflows")).json() == []
    other = await second.get(f"/workflows/{shipped['workflow']}.svg")
    assert other.status == 404  # another application's workflow
