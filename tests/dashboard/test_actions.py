"""Actions: POST only, audited (who, what, when, outcome), as HTML forms
(answered with a redirect back) and as JSON."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import Context, ExecutionMode, JobState, Tasks, dashboard
from aiohttp_jobs.stores import MemoryStore, TaskStore
from aiohttp_jobs.testing import FakeClock, settle
from tests.dashboard.support import (
    SAME_ORIGIN,
    ClientFactory,
    finished,
    forever,
    make_app,
    returning,
    scheduler_of,
)

# Two days before Europe/Berlin moves its clocks forward (2026-03-29).
T0 = datetime(2026, 3, 27, 12, tzinfo=UTC)


def _tasks(log: list[Any]) -> Tasks:
    tasks = Tasks()

    @tasks.task(schedule="30 2 * * *", timezone="Europe/Berlin")
    async def nightly(ctx: Context) -> str:
        log.append(("nightly", ctx.payload))
        return "done"

    @tasks.task(keyword="order-placed")
    async def on_order(ctx: Context) -> None:
        log.append(("on_order", dict(ctx.params)))

    @tasks.task(interval=60)
    async def flaky(ctx: Context) -> None:
        log.append(("flaky", None))
        raise RuntimeError("flaky failed")

    @tasks.dynamic_task()
    async def remind(ctx: Context) -> None:
        log.append(("remind", ctx.name))

    return tasks


async def _client(aiohttp_client: ClientFactory, log: list[Any], **kw: Any) -> Any:
    clock = FakeClock(T0)
    client = await aiohttp_client(make_app(tasks=_tasks(log), clock=clock, **kw))
    return client, clock


def _runtime(client: Any) -> aiohttp_jobs.TaskRuntime:
    return aiohttp_jobs.get_tasks(client.app)


async def test_cancel_a_job_from_its_page(
    aiohttp_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await aiohttp_client(make_app(identify=lambda request: "ann"))
    job = await scheduler_of(client).spawn(forever(), "long")
    page = await (await client.get(f"/jobs/jobs/{job.id}")).text()
    assert 'data-testid="cancel-job"' in page and 'data-confirm="' in page
    assert f'action="./{job.id}/cancel"' in page
    with caplog.at_level(logging.INFO, logger="aiohttp_jobs.dashboard.audit"):
        response = await client.post(
            f"/jobs/jobs/{job.id}/cancel", headers=SAME_ORIGIN, allow_redirects=False
        )
    assert response.status == 303
    location = response.headers["Location"]
    assert location.startswith(f"../{job.id}?done=")  # relative, back to the page
    assert job.state is JobState.CANCELLED
    [entry] = dashboard.audit_log(client.app)
    assert (entry.who, entry.action, entry.target, entry.outcome) == (
        "ann",
        "cancel",
        job.id,
        "ok",
    )
    assert any(
        "cancel" in r.getMessage() and "ann" in r.getMessage() for r in caplog.records
    )
    # Following the redirect shows the outcome and the new state.
    page = await (await client.get(f"/jobs/jobs/{job.id}?done={entry.seq}")).text()
    assert 'data-testid="action-result" data-outcome="ok"' in page
    assert 'data-state="cancelled"' in page and 'data-testid="cancel-job"' not in page


async def test_cancel_through_the_api(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app())
    scheduler = scheduler_of(client)
    job = await scheduler.spawn(forever(), "long")
    response = await client.post(f"/jobs/api/jobs/{job.id}/cancel")
    body = await response.json()
    assert response.status == 200
    assert body["outcome"] == "ok" and body["state"] == "cancelled"
    response = await client.post(f"/jobs/api/jobs/{job.id}/cancel")
    assert response.status == 409
    assert (await response.json())["outcome"] == "conflict"
    response = await client.post("/jobs/api/jobs/nope-1/cancel")
    assert response.status == 404
    outcomes = [e.outcome for e in dashboard.audit_log(client.app)]
    assert outcomes == ["not found", "conflict", "ok"]


async def test_bulk_cancel_shows_the_count_first_and_is_capped(
    aiohttp_client: ClientFactory,
) -> None:
    client = await aiohttp_client(make_app(bulk_limit=3))
    scheduler = scheduler_of(client)
    doomed = [await scheduler.spawn(forever(), "batch", tags=("x",)) for _ in range(5)]
    other = await scheduler.spawn(forever(), "other")
    page = await (await client.get("/jobs/jobs/cancel?name=batch")).text()
    assert 'data-testid="bulk-count" data-matched="5"' in page
    assert "Only the newest 3" in page
    preview = await (await client.get("/jobs/api/jobs/cancel?tag=x")).json()
    assert preview == {"matched": 5, "cap": 3, "will_cancel": 3}
    response = await client.post(
        "/jobs/jobs/cancel?name=batch", headers=SAME_ORIGIN, allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"].startswith("../jobs?name=batch&done=")
    assert [j.done for j in doomed] == [False, False, True, True, True]  # newest first
    assert not other.done
    body = await (
        await client.post("/jobs/api/jobs/cancel", json={"name": "batch"})
    ).json()
    assert (body["matched"], body["cancelled"]) == (2, 2)
    assert all(j.done for j in doomed) and not other.done
    # Finished jobs cannot be cancelled: such a filter is refused.
    response = await client.post("/jobs/api/jobs/cancel", json={"state": "failed"})
    assert response.status == 400
    await other.close()


async def test_run_now_enable_disable_and_retry(aiohttp_client: ClientFactory) -> None:
    log: list[Any] = []
    client, clock = await _client(aiohttp_client, log)
    runtime = _runtime(client)
    response = await client.post(
        "/jobs/tasks/run",
        data={"key": "nightly"},
        headers=SAME_ORIGIN,
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"].startswith(
        "../tasks?done="
    )
    await runtime.wait_idle()
    await settle()
    assert log == [("nightly", None)]
    page = await (await client.get("/jobs/tasks")).text()
    assert 'data-testid="task-run-row" data-outcome="succeeded"' in page

    body = await (
        await client.post("/jobs/api/tasks/disable", json={"key": "nightly"})
    ).json()
    assert body["outcome"] == "ok"
    info = {i.key: i for i in await runtime.list_tasks()}
    assert not info["nightly"].enabled
    page = await (await client.get("/jobs/tasks")).text()
    assert 'data-task-key="nightly" data-enabled="false"' in page
    await client.post("/jobs/api/tasks/enable", json={"key": "nightly"})
    info = {i.key: i for i in await runtime.list_tasks()}
    assert info["nightly"].enabled

    # A failed run, retried.
    await client.post("/jobs/api/tasks/run", json={"key": "flaky"})
    await runtime.wait_idle()
    await settle()
    failed = scheduler_of(client).history.query(name="flaky")
    assert failed and failed[0].state is JobState.FAILED
    page = await (await client.get(f"/jobs/jobs/{failed[0].id}")).text()
    assert 'data-testid="retry-run"' in page and 'data-testid="job-task"' in page
    body = await (
        await client.post(
            "/jobs/api/tasks/retry", json={"key": "flaky", "job_id": failed[0].id}
        )
    ).json()
    assert body["outcome"] == "ok" and failed[0].id in body["detail"]
    await runtime.wait_idle()
    assert [name for name, _ in log].count("flaky") == 2

    response = await client.post("/jobs/api/tasks/run", json={"key": "missing"})
    assert response.status == 404
    response = await client.post("/jobs/api/tasks/run", json={})
    assert response.status == 400
    del clock


async def test_fire_a_keyword_with_a_json_payload(
    aiohttp_client: ClientFactory,
) -> None:
    log: list[Any] = []
    client, _ = await _client(aiohttp_client, log)
    runtime = _runtime(client)
    page = await (await client.get("/jobs/tasks")).text()
    assert 'data-testid="fire-keyword"' in page and "order-placed" in page
    response = await client.post(
        "/jobs/keywords/fire",
        data={"keyword": "order-placed", "payload": '{"order": 7}'},
        headers=SAME_ORIGIN,
        allow_redirects=False,
    )
    assert response.status == 303
    await runtime.wait_idle()
    await settle()
    assert log == [("on_order", {"order": 7})]
    body = await (
        await client.post(
            "/jobs/api/keywords/fire",
            json={"keyword": "order-placed", "payload": {"order": 8}},
        )
    ).json()
    assert body["outcome"] == "ok" and len(body["run_ids"]) == 1
    for bad in ("[1, 2]", "{nope"):
        response = await client.post(
            "/jobs/keywords/fire", data={"keyword": "order-placed", "payload": bad}
        )
        assert response.status == 400
    response = await client.post(
        "/jobs/api/keywords/fire", json={"keyword": "order-placed", "payload": [1]}
    )
    assert response.status == 400


async def test_unschedule_a_dynamic_instance(aiohttp_client: ClientFactory) -> None:
    log: list[Any] = []
    client, _ = await _client(aiohttp_client, log)
    runtime = _runtime(client)
    await runtime.schedule_task("remind", "ann", interval=timedelta(hours=1))
    page = await (await client.get("/jobs/tasks")).text()
    assert 'data-task-key="remind:ann"' in page and 'data-testid="unschedule"' in page
    body = await (
        await client.post("/jobs/api/tasks/unschedule", json={"key": "remind:ann"})
    ).json()
    assert body["outcome"] == "ok"
    assert [i.key for i in await runtime.list_tasks() if i.task == "remind"] == []
    response = await client.post(
        "/jobs/api/tasks/unschedule", json={"key": "remind:ann"}
    )
    assert response.status == 404
    response = await client.post("/jobs/api/tasks/unschedule", json={"key": "nightly"})
    assert response.status == 400


async def test_task_actions_without_a_registry(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app())
    response = await client.post("/jobs/api/tasks/run", json={"key": "x"})
    assert response.status == 404
    assert "no task registry" in (await response.json())["detail"]


async def test_bad_bodies_are_client_errors(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app())
    for body in ("not json", "[1]"):
        response = await client.post(
            "/jobs/api/tasks/run",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        assert response.status == 400, body
    entries = dashboard.audit_log(client.app)  # type: ignore[arg-type]
    assert [(e.action, e.outcome) for e in entries] == [("run", "error")] * 2


async def test_the_audit_page_lists_actions(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app())
    job = await finished(scheduler_of(client), returning(1), "quick")
    await client.post(f"/jobs/api/jobs/{job.id}/cancel")
    page = await (await client.get("/jobs/audit")).text()
    assert (
        'data-testid="audit-row" data-outcome="conflict" data-action="cancel"' in page
    )
    api = await (await client.get("/jobs/api/audit")).json()
    assert api["entries"][0]["target"] == job.id


async def test_cancel_a_running_task_run(aiohttp_client: ClientFactory) -> None:
    tasks = Tasks()
    started = asyncio.Event()

    @tasks.task(keyword="slow")
    async def slow(ctx: Context) -> None:
        started.set()
        await asyncio.Event().wait()

    client = await aiohttp_client(make_app(tasks=tasks, clock=FakeClock(T0)))
    runtime = aiohttp_jobs.get_tasks(client.app)
    [run_id] = await runtime.fire("slow")
    await asyncio.wait_for(started.wait(), 10)
    page = await (await client.get("/jobs/tasks")).text()
    assert 'data-testid="cancel-run"' in page and run_id in page
    body = await (
        await client.post("/jobs/api/tasks/cancel", json={"run_id": run_id})
    ).json()
    assert body["outcome"] == "ok"
    await runtime.wait_idle()
    [job] = scheduler_of(client).history.query(name="slow")
    assert job.state is JobState.CANCELLED
    response = await client.post("/jobs/api/tasks/cancel", json={"run_id": run_id})
    assert response.status == 404


async def test_metrics_are_mounted_behind_the_guard(
    aiohttp_client: ClientFactory,
) -> None:
    from aiohttp_jobs import metrics

    client = await aiohttp_client(make_app())
    assert (await client.get("/jobs/metrics")).status == 404  # not set up
    app = make_app()
    metrics.setup(app)
    client = await aiohttp_client(app)
    response = await client.get("/jobs/metrics")
    assert response.status == 200
    assert "aiohttp_jobs" in await response.text()
    response = await client.get("/jobs/metrics", headers={"X-Forwarded-For": "1.2.3.4"})
    assert response.status == 403

    asked: list[str] = []

    def authorize(request: web.Request, action: str) -> bool:
        asked.append(action)
        return action != "metrics"

    app = make_app(authorize=authorize)
    metrics.setup(app)
    client = await aiohttp_client(app)
    assert (await client.get("/jobs/metrics")).status == 403
    assert asked == ["metrics"]


async def test_after_firing_the_keyword_stays_selected(
    aiohttp_client: ClientFactory,
) -> None:
    log: list[Any] = []
    client, _ = await _client(aiohttp_client, log)
    response = await client.post(
        "/jobs/keywords/fire",
        data={"keyword": "order-placed", "payload": "{}"},
        headers=SAME_ORIGIN,
        allow_redirects=False,
    )
    location = response.headers["Location"]
    assert location.startswith("../tasks?keyword=order-placed&done=")
    page = await (await client.get("/jobs/tasks?keyword=order-placed")).text()
    assert "<option selected>order-placed</option>" in page


def _two_instances_tasks(store: TaskStore, owner: str) -> Tasks:
    tasks = Tasks(store=store, owner=owner)

    @tasks.task(keyword="slow", lease_duration=30)
    async def slow(ctx: Context) -> None:
        await asyncio.Event().wait()

    return tasks


async def test_a_run_on_another_instance_shows_who_holds_it_and_is_cancelled(
    aiohttp_client: ClientFactory,
) -> None:
    shared = MemoryStore()  # one store, two instances
    clock = FakeClock(T0)
    async with (
        aiohttp_jobs.Scheduler(limit=None) as scheduler,
        _two_instances_tasks(shared, "b").runtime(
            app=None, scheduler=scheduler, clock=clock
        ) as other,
    ):
        [run_id] = await other.fire("slow")
        await settle()  # instance b claims the run and starts it
        assert other.in_flight == 1
        client = await aiohttp_client(
            make_app(tasks=_two_instances_tasks(shared, "a"), clock=clock)
        )
        here = _runtime(client)
        assert here.instance_id == "a" and here.in_flight == 0
        [row] = (await (await client.get("/jobs/api/tasks")).json())["tasks"]
        [b] = [i for i in await here.instances() if i.instance_id == "b"]
        assert row["running"] == 1 and row["running_here"] == 0
        assert row["lease"] == f"b on {b.host}"
        assert row["holders"] == [
            {
                "run_id": run_id,
                "instance": "b",
                "this": False,
                "host": b.host,
                "attempt": 0,
                "fire_at": clock.time(),
                "expires_at": clock.time() + 30,
                "cancel_requested": False,
            }
        ]
        assert row["running_run"] == run_id
        page = await (await client.get("/jobs/tasks")).text()
        assert 'data-task-key="slow" data-enabled="true" data-running="1"' in page
        assert (
            f'data-testid="task-holder" data-run-id="{run_id}" data-instance="b" '
            'data-this="false"'
        ) in page
        assert f'name="run_id" value="{run_id}"' in page  # its cancel button
        body = await (
            await client.post("/jobs/api/tasks/cancel", json={"run_id": run_id})
        ).json()
        assert body["outcome"] == "ok"
        [row] = (await (await client.get("/jobs/api/tasks")).json())["tasks"]
        assert [h["cancel_requested"] for h in row["holders"]] == [True]
        assert "cancel requested" in await (await client.get("/jobs/tasks")).text()
        await clock.advance(10)  # b hears of it at its next heartbeat
        await other.wait_idle()
        [row] = (await (await client.get("/jobs/api/tasks")).json())["tasks"]
        assert (row["running"], row["holders"], row["lease"]) == (0, [], None)
        assert row["running_run"] is None
        [entry] = await here.recent_runs("slow")
        assert (entry.instance, entry.outcome) == ("b", "cancelled")


async def test_a_run_of_this_instance_is_shown_as_held_here(
    aiohttp_client: ClientFactory,
) -> None:
    clock = FakeClock(T0)
    tasks = _two_instances_tasks(MemoryStore(), "a")
    client = await aiohttp_client(make_app(tasks=tasks, clock=clock))
    runtime = _runtime(client)
    [run_id] = await runtime.fire("slow")
    await settle()
    [row] = (await (await client.get("/jobs/api/tasks")).json())["tasks"]
    assert (row["running"], row["running_here"]) == (1, 1)
    assert row["lease"] == "this instance (a)"
    assert [(h["run_id"], h["this"]) for h in row["holders"]] == [(run_id, True)]
    page = await (await client.get("/jobs/tasks")).text()
    assert f'data-run-id="{run_id}" data-instance="a" data-this="true"' in page


async def test_a_run_holding_no_lease_is_shown_as_running_here(
    aiohttp_client: ClientFactory,
) -> None:
    # An at-most-once run settles its occurrence first: no lease names it, so
    # this instance's own jobs count it.
    tasks = Tasks(store=MemoryStore(), owner="a")

    @tasks.task(keyword="slow", execution_mode=ExecutionMode.AT_MOST_ONCE)
    async def slow(ctx: Context) -> None:
        await asyncio.Event().wait()

    client = await aiohttp_client(make_app(tasks=tasks, clock=FakeClock(T0)))
    await _runtime(client).fire("slow")
    await settle()
    [row] = (await (await client.get("/jobs/api/tasks")).json())["tasks"]
    assert (row["running"], row["holders"]) == (1, [])
    assert row["lease"] == "this instance (a)"
