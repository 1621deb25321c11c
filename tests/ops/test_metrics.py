"""Prometheus metrics: job counters and histograms, gauges computed at scrape
time, task store timings, the aiohttp handler, and the label cap."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from typing import Any

import prometheus_client
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

import aiohttp_jobs
from aiohttp_jobs import (
    ConfigTypeError,
    Context,
    Priority,
    Scheduler,
    SetupError,
    Tasks,
    metrics,
)
from aiohttp_jobs.stores import Claim, MemoryStore, TaskRecord
from aiohttp_jobs.testing import FakeClock
from tests.helpers import ROOT, blocked, failing, returning, settle


def value(registry: CollectorRegistry, series: str, **labels: str) -> float | None:
    return registry.get_sample_value(series, labels)


async def test_jobs_are_counted_by_name_and_state_with_run_and_wait_times() -> None:
    async with Scheduler(wait_timeout=1) as scheduler:
        m = metrics.instrument(scheduler)
        reg = m.registry
        for i in range(3):
            await scheduler.spawn(returning(i), "ok")
        failed = await scheduler.spawn(failing(ValueError("x")), "bad")
        with pytest.raises(ValueError):
            await failed.wait()
        gate = asyncio.Event()
        running = await scheduler.spawn(blocked(gate), "slow")
        await settle()
        # A running job counts as started (and its wait is observed) at once.
        assert value(reg, "aiohttp_jobs_jobs_started_total", name="slow") == 1
        assert value(reg, "aiohttp_jobs_jobs_finished_total", name="slow") is None
        gate.set()
        await running.wait()
        cancelled = await scheduler.spawn(blocked(asyncio.Event()), "stuck")
        await settle()
        await cancelled.close()
    assert value(reg, "aiohttp_jobs_jobs_started_total", name="ok") == 3
    assert (
        value(reg, "aiohttp_jobs_jobs_finished_total", name="ok", state="succeeded")
        == 3
    )
    assert (
        value(reg, "aiohttp_jobs_jobs_finished_total", name="bad", state="failed") == 1
    )
    assert (
        value(reg, "aiohttp_jobs_jobs_finished_total", name="stuck", state="cancelled")
        == 1
    )
    assert value(reg, "aiohttp_jobs_jobs_started_total", name="slow") == 1
    assert value(reg, "aiohttp_jobs_job_run_seconds_count", name="ok") == 3
    assert value(reg, "aiohttp_jobs_job_run_seconds_bucket", name="ok", le="+Inf") == 3
    assert value(reg, "aiohttp_jobs_job_wait_seconds_count", priority="normal") == 6


async def test_active_pending_and_capacity_per_priority_are_read_at_scrape() -> None:
    gate = asyncio.Event()
    async with Scheduler(limit=1, reserve_normal=1, pending_limit=5) as scheduler:
        reg = metrics.instrument(scheduler).registry
        await scheduler.spawn(blocked(gate), priority=Priority.LOW)
        await scheduler.spawn(blocked(gate), priority=Priority.NORMAL)
        await scheduler.spawn(blocked(gate), priority=Priority.LOW)
        await scheduler.spawn(blocked(gate), priority=Priority.HIGH)
        await scheduler.spawn(blocked(gate), priority=Priority.CRITICAL)
        await scheduler.spawn(blocked(gate), delay=3600)
        assert value(reg, "aiohttp_jobs_jobs_active", priority="low") == 1
        assert value(reg, "aiohttp_jobs_jobs_active", priority="normal") == 1
        assert value(reg, "aiohttp_jobs_jobs_active", priority="critical") == 1
        assert value(reg, "aiohttp_jobs_jobs_pending", priority="low") == 1
        assert value(reg, "aiohttp_jobs_jobs_pending", priority="high") == 1
        assert value(reg, "aiohttp_jobs_jobs_pending", priority="critical") is None
        assert value(reg, "aiohttp_jobs_jobs_scheduled") == 1
        assert value(reg, "aiohttp_jobs_capacity", priority="low") == 1
        assert value(reg, "aiohttp_jobs_capacity", priority="normal") == 2
        assert value(reg, "aiohttp_jobs_capacity", priority="critical") is None
        assert value(reg, "aiohttp_jobs_pending_limit") == 5
        scheduler.limit = None
        await settle()
        assert value(reg, "aiohttp_jobs_capacity", priority="low") is None
        assert value(reg, "aiohttp_jobs_jobs_pending", priority="low") == 0
        gate.set()


async def test_job_names_beyond_the_cap_are_counted_as_other() -> None:
    async with Scheduler(wait_timeout=1) as scheduler:
        reg = metrics.instrument(scheduler, max_names=2).registry
        for name in ("a", "b", "c", "d", "a"):
            await (await scheduler.spawn(returning(1), name)).wait()
    assert value(reg, "aiohttp_jobs_jobs_started_total", name="a") == 2
    assert value(reg, "aiohttp_jobs_jobs_started_total", name="b") == 1
    assert value(reg, "aiohttp_jobs_jobs_started_total", name="_other") == 2
    assert value(reg, "aiohttp_jobs_jobs_started_total", name="c") is None


async def test_job_label_folds_names() -> None:
    async with Scheduler(wait_timeout=1) as scheduler:
        reg = metrics.instrument(
            scheduler, job_label=lambda job: job.name.split(":")[0]
        ).registry
        for name in ("report:1", "report:2", "mail"):
            await (await scheduler.spawn(returning(1), name)).wait()
    assert value(reg, "aiohttp_jobs_jobs_started_total", name="report") == 2
    assert value(reg, "aiohttp_jobs_jobs_started_total", name="mail") == 1


async def test_an_application_registry_can_be_shared() -> None:
    registry = CollectorRegistry()
    async with Scheduler(wait_timeout=1) as scheduler:
        m = metrics.instrument(scheduler, registry=registry)
        await (await scheduler.spawn(returning(1), "x")).wait()
    assert m.registry is registry
    assert value(registry, "aiohttp_jobs_jobs_started_total", name="x") == 1


async def test_store_calls_are_timed_and_errors_lateness_takeovers_counted() -> None:
    store = MemoryStore()
    async with Scheduler(wait_timeout=1) as scheduler:
        m = metrics.instrument(scheduler, store=store)
        reg = m.registry
        async with store:
            await store.save(TaskRecord(key="t", task="t", fire_at=100.0))
            [claim] = await store.acquire(
                now=107.5, owner="me", lease_duration=10, limit=1
            )
            # Another runner takes the expired lease over: ours is lost.
            [theirs] = await store.acquire(
                now=200.0, owner="them", lease_duration=10, limit=1
            )
            assert isinstance(theirs, Claim)
            assert not await store.extend(claim, until=300.0)
            assert not await store.commit(claim)
            with pytest.raises(LookupError):
                await store.add_run("missing", fire_at=1.0)
        m.observe_store(store)  # observed once only
    # Both claims of the occurrence due at 100: at 107.5, and at 200.
    assert value(reg, "aiohttp_jobs_task_lateness_seconds_count", task="t") == 2
    assert value(reg, "aiohttp_jobs_task_lateness_seconds_sum", task="t") == 107.5
    assert (
        value(reg, "aiohttp_jobs_task_lateness_seconds_bucket", task="t", le="10.0")
        == 1
    )
    assert value(reg, "aiohttp_jobs_task_lease_takeovers_total", task="t") == 2
    assert value(reg, "aiohttp_jobs_store_errors_total", operation="add_run") == 1
    assert value(reg, "aiohttp_jobs_store_seconds_count", operation="acquire") == 2
    assert value(reg, "aiohttp_jobs_store_seconds_count", operation="save") == 1


def _app(**options: Any) -> web.Application:
    app = web.Application()
    aiohttp_jobs.setup(app)
    metrics.setup(app, **options)
    app.router.add_get("/metrics", metrics.handler)
    return app


async def test_handler_serves_every_series_of_the_application(
    aiohttp_client: Any,
) -> None:
    tasks = Tasks()

    @tasks.task(interval=3600)
    async def tick(ctx: Context) -> None:
        pass

    app = web.Application()
    aiohttp_jobs.setup(app, tasks=tasks, clock=FakeClock(0))
    metrics.setup(app)
    sub = web.Application()
    sub.router.add_get("/metrics", metrics.handler)
    app.add_subapp("/ops", sub)

    async def work(request: web.Request) -> web.Response:
        job = await aiohttp_jobs.spawn(request, returning(1), "work")
        await job.wait()
        return web.Response()

    app.router.add_post("/work", work)
    client = await aiohttp_client(app)
    assert metrics.is_enabled(app)
    await client.post("/work")
    metrics.dashboard_streams_changed(app, 2)
    resp = await client.get("/ops/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    for series in (
        'aiohttp_jobs_jobs_started_total{name="work"} 1.0',
        'aiohttp_jobs_jobs_finished_total{name="work",state="succeeded"} 1.0',
        'aiohttp_jobs_job_run_seconds_count{name="work"} 1.0',
        'aiohttp_jobs_job_wait_seconds_count{priority="normal"} 1.0',
        'aiohttp_jobs_jobs_active{priority="normal"} 0.0',
        'aiohttp_jobs_jobs_pending{priority="normal"} 0.0',
        'aiohttp_jobs_capacity{priority="low"} 100.0',
        "aiohttp_jobs_pending_limit 10000.0",
        "aiohttp_jobs_jobs_scheduled 0.0",
        'aiohttp_jobs_store_seconds_count{operation="acquire"}',
        "# TYPE aiohttp_jobs_task_lateness_seconds histogram",
        "# TYPE aiohttp_jobs_task_lease_takeovers_total counter",
        "# TYPE aiohttp_jobs_store_errors_total counter",
        "aiohttp_jobs_dashboard_streams 2.0",
    ):
        assert series in text, series
    om = await client.get(
        "/ops/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    )
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await om.text()).endswith("# EOF\n")


async def test_setup_checks_its_arguments_and_order() -> None:
    with pytest.raises(SetupError, match=r"aiohttp_jobs.setup\(app\) first"):
        metrics.setup(web.Application())
    app = _app()
    with pytest.raises(SetupError, match="twice"):
        metrics.setup(app)
    with pytest.raises(ConfigTypeError, match="registry"):
        metrics.setup(_app_without_metrics(), registry="default")  # type: ignore[arg-type]
    with pytest.raises(ConfigTypeError, match="max_names"):
        metrics.setup(_app_without_metrics(), max_names="10")  # type: ignore[arg-type]
    with pytest.raises(ConfigTypeError, match="store"):
        metrics.instrument(Scheduler(), store="memory://")  # type: ignore[arg-type]
    plain = web.Application()
    assert not metrics.is_enabled(plain)
    metrics.dashboard_streams_changed(plain, 3)  # no metrics: nothing happens


def _app_without_metrics() -> web.Application:
    app = web.Application()
    aiohttp_jobs.setup(app)
    return app


def test_the_default_registry_is_a_fresh_one() -> None:
    m = metrics.instrument(Scheduler())
    assert m.registry is not prometheus_client.REGISTRY


def test_a_missing_prometheus_client_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "import aiohttp_jobs, aiohttp_jobs.metrics as m\n"
        "try:\n    m.instrument(aiohttp_jobs.Scheduler())\n"
        "except aiohttp_jobs.MissingDependencyError as exc:\n    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert 'pip install "aiohttp-jobs[metrics]"' in out.stdout


async def test_scheduler_observers_see_every_start_and_end_once() -> None:
    seen: list[tuple[str, str]] = []

    class Observer:
        def job_started(self, job: Any) -> None:
            seen.append(("started", job.name))

        def job_finished(self, job: Any) -> None:
            seen.append((f"finished {job.state}", job.name))

    class EndsOnly:
        def job_finished(self, job: Any) -> None:
            seen.append(("ends only", job.name))

    observer, ends = Observer(), EndsOnly()
    async with Scheduler(limit=1, wait_timeout=1) as scheduler:
        scheduler.add_observer(observer)
        scheduler.add_observer(observer)  # added twice: called once
        scheduler.add_observer(ends)
        await (await scheduler.spawn(returning(1), "a")).wait()
        gate = asyncio.Event()
        await scheduler.spawn(blocked(gate), "b")
        dropped = await scheduler.spawn(returning(2), "c")  # pending
        assert scheduler.priority_counts()[Priority.NORMAL] == (1, 1)
        await dropped.close()
        scheduler.remove_observer(ends)
        gate.set()
    assert seen == [
        ("started", "a"),
        ("finished succeeded", "a"),
        ("ends only", "a"),
        ("started", "b"),
        ("finished cancelled", "c"),
        ("ends only", "c"),
        ("finished succeeded", "b"),
    ]
    with pytest.raises(ConfigTypeError, match="observer"):
        Scheduler().add_observer(object())
    with pytest.raises(ConfigTypeError, match=r"observer\.job_finished"):
        Scheduler().add_observer(type("Bad", (), {"job_finished": 1})())


async def test_the_dashboard_prefix_scrapes_every_listed_series(
    aiohttp_client: Any,
) -> None:
    from aiohttp_jobs import dashboard

    tasks = Tasks()

    @tasks.task(interval=60)
    async def tick(ctx: Context) -> None:
        pass

    clock = FakeClock(0)
    app = web.Application()
    aiohttp_jobs.setup(app, tasks=tasks, clock=clock)
    metrics.setup(app)
    dashboard.setup(app, prefix="/ops/jobs")
    client = await aiohttp_client(app)
    await clock.advance(60)
    await aiohttp_jobs.get_tasks(app).wait_idle()
    text = await (await client.get("/ops/jobs/metrics")).text()
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    assert families == {
        "aiohttp_jobs_jobs_started_total",
        "aiohttp_jobs_jobs_finished_total",
        "aiohttp_jobs_job_run_seconds",
        "aiohttp_jobs_job_wait_seconds",
        "aiohttp_jobs_jobs_active",
        "aiohttp_jobs_jobs_pending",
        "aiohttp_jobs_jobs_scheduled",
        "aiohttp_jobs_capacity",
        "aiohttp_jobs_pending_limit",
        "aiohttp_jobs_task_lateness_seconds",
        "aiohttp_jobs_task_lease_takeovers_total",
        "aiohttp_jobs_store_errors_total",
        "aiohttp_jobs_store_seconds",
        "aiohttp_jobs_dashboard_streams",
    }
    assert 'aiohttp_jobs_jobs_finished_total{name="tick",state="succeeded"} 1.0' in text
    assert 'aiohttp_jobs_task_lateness_seconds_count{task="tick"} 1.0' in text
    assert 'aiohttp_jobs_store_seconds_count{operation="commit"}' in text


async def test_a_failing_job_label_never_breaks_the_scheduler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def job_label(job: Any) -> str:
        if job.name == "boom":
            raise KeyError(job.name)
        return None if job.name == "none" else job.name  # type: ignore[return-value]

    async with Scheduler(wait_timeout=1) as scheduler:
        reg = metrics.instrument(scheduler, job_label=job_label).registry
        for name in ("ok", "boom", "none"):
            assert await (await scheduler.spawn(returning(name), name)).wait() == name
        assert value(reg, "aiohttp_jobs_jobs_started_total", name="_other") == 2
        assert value(reg, "aiohttp_jobs_jobs_started_total", name="ok") == 1
    assert [r.name for r in caplog.records] == ["aiohttp_jobs.metrics"]
