"""Trace propagation: spans for jobs spawned from requests, atomic and shielded
work and task runs, checked with the OpenTelemetry SDK's in-memory exporter;
and no OpenTelemetry import at all while the application does not use it.

Each test runs in a fresh interpreter: tracing switches itself on once
OpenTelemetry is imported, which must not leak into the other tests."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from tests.helpers import ROOT

_TRACED_APP = textwrap.dedent(
    """
    import asyncio, gc, json
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer
    import aiohttp_jobs

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("test")
    names = {}

    @web.middleware
    async def server_span(request, handler):
        # What opentelemetry-instrumentation-aiohttp-server does per request.
        with tracer.start_as_current_span(f"HTTP {request.method} {request.path}"):
            return await handler(request)

    async def mail():
        with tracer.start_as_current_span("inside mail"):
            await asyncio.sleep(0)

    async def compute():
        return 42

    async def audit():
        await asyncio.sleep(0)

    async def spawn(request):
        job = await aiohttp_jobs.spawn(request, mail(), "mail")
        unnamed = await aiohttp_jobs.spawn(request, compute())
        await job.wait()
        names["unnamed"] = unnamed.name
        names["result"] = await unnamed.wait()
        return web.Response()

    @aiohttp_jobs.atomic
    async def write(request):
        with tracer.start_as_current_span("inside write"):
            return web.Response()

    async def shielded(request):
        await aiohttp_jobs.shield(request, audit())
        return web.Response()

    async def refused(request):
        aiohttp_jobs.get_scheduler(request).drain()
        try:
            await aiohttp_jobs.spawn(request, compute(), reject_when_full=True)
        except web.HTTPServiceUnavailable:
            names["nowait refused"] = True
        coro = compute()
        try:
            await aiohttp_jobs.spawn(request, coro)
        except aiohttp_jobs.SchedulerClosedError:
            coro.close()  # spawn() left it to its owner, as without tracing
            names["spawn refused"] = True
        return web.Response()

    async def run_now(request):
        await aiohttp_jobs.get_tasks(request.app).run_now("tick")
        await aiohttp_jobs.get_tasks(request.app).wait_idle()
        return web.Response()

    tasks = aiohttp_jobs.Tasks()

    @tasks.task(interval=3600)
    async def tick(ctx):
        with tracer.start_as_current_span("inside tick"):
            pass

    async def main():
        app = web.Application(middlewares=[server_span])
        aiohttp_jobs.setup(app, tasks=tasks)
        app.router.add_post("/spawn", spawn)
        app.router.add_post("/write", write)
        app.router.add_post("/shield", shielded)
        app.router.add_post("/run", run_now)
        app.router.add_post("/refused", refused)
        async with TestClient(TestServer(app)) as client:
            for path in ("/spawn", "/write", "/shield", "/run", "/refused"):
                assert (await client.post(path)).status == 200
        spans = [
            {
                "name": s.name,
                "trace": s.context.trace_id,
                "id": s.context.span_id,
                "parent": s.parent.span_id if s.parent else None,
                "attributes": dict(s.attributes),
            }
            for s in exporter.get_finished_spans()
        ]
        gc.collect()  # a coroutine never awaited would warn now
        print(json.dumps({"spans": spans, "names": names}))

    asyncio.run(main())
    """
)


def _run(code: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=50,
    )
    assert out.returncode == 0, out.stderr
    assert "never awaited" not in out.stderr, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_background_work_spans_follow_the_request_and_task_runs_root_their_own() -> (
    None
):
    result = _run(_TRACED_APP)
    spans = {span["name"]: span for span in result["spans"]}

    def child_of(name: str, parent: str) -> None:
        assert spans[name]["parent"] == spans[parent]["id"], (name, parent)
        assert spans[name]["trace"] == spans[parent]["trace"], (name, parent)

    child_of("job mail", "HTTP POST /spawn")
    child_of("inside mail", "job mail")
    child_of("job compute", "HTTP POST /spawn")
    child_of("atomic write", "HTTP POST /write")
    child_of("inside write", "atomic write")
    child_of("shield audit", "HTTP POST /shield")
    child_of("inside tick", "task tick")
    job = spans["job mail"]["attributes"]
    assert job["aiohttp_jobs.kind"] == "job"
    assert job["aiohttp_jobs.origin"] == "POST /spawn"
    assert job["aiohttp_jobs.job.name"] == "mail" and job["aiohttp_jobs.job.id"]
    task = spans["task tick"]
    assert task["parent"] is None  # its cause is the schedule, not the request
    assert task["trace"] != spans["HTTP POST /run"]["trace"]
    assert task["attributes"]["aiohttp_jobs.task.name"] == "tick"
    assert task["attributes"]["aiohttp_jobs.task.run_id"].startswith("tick@")
    assert task["attributes"]["aiohttp_jobs.task.attempt"] == 0
    # The wrapper keeps the job's default name and its result.
    assert result["names"] == {
        "unnamed": "compute",
        "result": 42,
        "nowait refused": True,
        "spawn refused": True,
    }


_UNTRACED = textwrap.dedent(
    """
    import asyncio, json, sys
    BLOCK
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer
    import aiohttp_jobs

    async def work():
        return 1

    async def spawn(request):
        job = await aiohttp_jobs.spawn(request, work())
        aiohttp_jobs.shield(request, work())
        return web.Response(text=str(await job.wait()))

    @aiohttp_jobs.atomic
    async def write(request):
        return web.Response()

    tasks = aiohttp_jobs.Tasks()

    @tasks.task(interval=3600)
    async def tick(ctx):
        pass

    async def main():
        app = web.Application()
        aiohttp_jobs.setup(app, tasks=tasks)
        app.router.add_post("/spawn", spawn)
        app.router.add_post("/write", write)
        async with TestClient(TestServer(app)) as client:
            assert await (await client.post("/spawn")).text() == "1"
            assert (await client.post("/write")).status == 200
            await aiohttp_jobs.get_tasks(app).run_now("tick")
            await aiohttp_jobs.get_tasks(app).wait_idle()
        loaded = sorted(
            m for m, module in sys.modules.items()
            if m.split(".")[0] in ("opentelemetry", "prometheus_client")
            and module is not None
        )
        print(json.dumps(loaded))

    asyncio.run(main())
    """
)


def test_without_opentelemetry_in_use_nothing_imports_it() -> None:
    assert _run(_UNTRACED.replace("BLOCK", "")) == []


def test_without_opentelemetry_installed_everything_works() -> None:
    blocked = "sys.modules['opentelemetry'] = None  # as if not installed"
    assert _run(_UNTRACED.replace("BLOCK", blocked)) == []
