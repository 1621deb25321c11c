"""Trace propagation: spans for jobs spawned from requests, atomic and shielded
work and task runs (linked to the request that fired them or ran them now, on
any instance sharing the store), checked with the OpenTelemetry SDK's
in-memory exporter; and no OpenTelemetry import at all while the application
does not use it.

Each test runs in a fresh interpreter: tracing switches itself on once
OpenTelemetry is imported, which must not leak into the other tests."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.helpers import ROOT

# The start of each traced script: an SDK whose spans a script prints with
# finished_spans().
_SDK = textwrap.dedent(
    """
    import asyncio, json
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("test")

    def finished_spans():
        return [
            {
                "name": s.name,
                "trace": s.context.trace_id,
                "id": s.context.span_id,
                "parent": s.parent.span_id if s.parent else None,
                "attributes": dict(s.attributes),
                "links": [
                    {
                        "trace": link.context.trace_id,
                        "id": link.context.span_id,
                        "attributes": dict(link.attributes),
                    }
                    for link in s.links
                ],
            }
            for s in exporter.get_finished_spans()
        ]
    """
)

_TRACED_APP = _SDK + textwrap.dedent(
    """
    import gc
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer
    import aiohttp_jobs
    from aiohttp_jobs import dashboard

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

    async def fire(request):
        await aiohttp_jobs.get_tasks(request.app).fire("order-placed", order=7)
        await aiohttp_jobs.get_tasks(request.app).wait_idle()
        return web.Response()

    tasks = aiohttp_jobs.Tasks()
    seen = []

    @tasks.task(interval=3600)
    async def tick(ctx):
        seen.append(["tick", ctx.params, ctx.payload])
        with tracer.start_as_current_span("inside tick"):
            pass

    @tasks.task(keyword="order-placed")
    async def on_order(ctx):
        seen.append(["on_order", ctx.params, ctx.payload])

    async def main():
        app = web.Application(middlewares=[server_span])
        aiohttp_jobs.setup(app, tasks=tasks)
        app.router.add_post("/spawn", spawn)
        app.router.add_post("/write", write)
        app.router.add_post("/shield", shielded)
        app.router.add_post("/run", run_now)
        app.router.add_post("/refused", refused)
        app.router.add_post("/fire", fire)
        dashboard.setup(app)
        async with TestClient(TestServer(app)) as client:
            for path in ("/spawn", "/write", "/shield", "/run", "/fire"):
                assert (await client.post(path)).status == 200
            # The dashboard's actions call the same runtime methods.
            for path, body in (
                ("/jobs/api/tasks/run", {"key": "tick"}),
                ("/jobs/api/keywords/fire", {"keyword": "order-placed"}),
            ):
                response = await client.post(path, json=body)
                assert (await response.json())["outcome"] == "ok", path
            await aiohttp_jobs.get_tasks(app).wait_idle()
            # Outside any span: a run with no link.
            await aiohttp_jobs.get_tasks(app).run_now("tick")
            await aiohttp_jobs.get_tasks(app).wait_idle()
            assert (await client.post("/refused")).status == 200  # drains
        spans = finished_spans()
        gc.collect()  # a coroutine never awaited would warn now
        print(json.dumps({"spans": spans, "names": names, "seen": seen}))

    asyncio.run(main())
    """
)


def _run(code: str, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=50,
    )
    assert out.returncode == 0, out.stderr
    assert "never awaited" not in out.stderr, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@functools.cache
def _traced_app() -> Any:
    """What :data:`_TRACED_APP` prints: run once for the tests that read it."""
    return _run(_TRACED_APP)


def test_background_work_spans_follow_the_request_and_task_runs_root_their_own() -> (
    None
):
    result = _traced_app()
    spans: dict[str, dict[str, Any]] = {}
    for span in result["spans"]:  # the first of each name (tick runs thrice)
        spans.setdefault(span["name"], span)

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


def _linked_to(span: dict[str, Any], cause: dict[str, Any]) -> dict[str, Any]:
    """The attributes of *span*'s one link, which names *cause*."""
    [link] = span["links"]
    assert (link["trace"], link["id"]) == (cause["trace"], cause["id"])
    return link["attributes"]  # type: ignore[no-any-return]


def test_runs_fired_or_run_now_link_to_the_request_that_caused_them() -> None:
    result = _traced_app()
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in result["spans"]:
        by_name.setdefault(span["name"], []).append(span)
    [run, dashboard_run, unlinked] = by_name["task tick"]
    [fired, dashboard_fired] = by_name["task on_order"]
    for span, cause, how in (
        (run, "HTTP POST /run", "run_now"),
        (dashboard_run, "HTTP POST /jobs/api/tasks/run", "run_now"),
        (fired, "HTTP POST /fire", "fire"),
        (dashboard_fired, "HTTP POST /jobs/api/keywords/fire", "fire"),
    ):
        [request] = by_name[cause]
        # Linked, not a child: the run is scheduled work with a trace of its own.
        assert span["parent"] is None and span["trace"] != request["trace"]
        attributes = span["attributes"]
        assert _linked_to(span, request) == {
            "aiohttp_jobs.task.name": attributes["aiohttp_jobs.task.name"],
            "aiohttp_jobs.task.run_id": attributes["aiohttp_jobs.task.run_id"],
            "aiohttp_jobs.task.attempt": 0,
            "aiohttp_jobs.task.cause": how,
        }
    assert unlinked["links"] == []  # run_now() outside any span
    # The task sees its payload as it was given, without the link.
    assert result["seen"] == [
        ["tick", {}, None],
        ["on_order", {"order": 7}, {"order": 7}],
        ["tick", {}, None],
        ["on_order", {}, {}],
        ["tick", {}, None],
    ]


_SHARED_SQLITE = _SDK + textwrap.dedent(
    """
    import contextlib, faulthandler, sys
    from aiohttp_jobs import Scheduler, Tasks
    from aiohttp_jobs.stores.sqlite import SQLiteStore

    faulthandler.dump_traceback_later(40, exit=True)  # a hang shows where it is
    holding, release = asyncio.Event(), asyncio.Event()
    ran = []

    def declare(owner):
        # Each runtime has a connection of its own to the file, as a process
        # would; one run at a time each.
        tasks = Tasks(store=SQLiteStore(sys.argv[1]), owner=owner, concurrency_limit=1)

        @tasks.task(keyword="hold")
        async def hold(ctx):
            holding.set()
            await release.wait()

        @tasks.task(keyword="order-placed", retries=1, retry_backoff=0.01)
        async def on_order(ctx):
            ran.append([ctx.runtime.instance_id, ctx.params, ctx.payload])
            if ctx.attempt == 0:
                raise RuntimeError("once")

        @tasks.task(interval=3600)
        async def report(ctx):
            ran.append([ctx.runtime.instance_id, ctx.params, ctx.payload])

        return tasks

    async def main():
        async with contextlib.AsyncExitStack() as stack:
            async def start(owner):
                scheduler = await stack.enter_async_context(Scheduler(limit=None))
                return await stack.enter_async_context(
                    declare(owner).runtime(app=None, scheduler=scheduler)
                )

            web = await start("web")
            await web.fire("hold")  # the web instance's only slot is taken
            await holding.wait()
            worker = await start("worker")
            with tracer.start_as_current_span("request"):
                await web.fire("order-placed", order=7)
                await web.run_now("report")
            for _ in range(400):  # the worker runs them (retry included)
                if len(ran) == 3:
                    break
                await asyncio.sleep(0.05)
            release.set()
        spans = finished_spans()
        print(json.dumps({"spans": spans, "ran": ran}))

    asyncio.run(main())
    """
)


def test_the_link_travels_with_the_run_to_the_instance_that_runs_it(
    tmp_path: Path,
) -> None:
    result = _run(_SHARED_SQLITE, str(tmp_path / "tasks.db"))
    assert sorted(result["ran"], key=json.dumps) == [
        ["worker", {"order": 7}, {"order": 7}],
        ["worker", {"order": 7}, {"order": 7}],
        ["worker", {}, None],
    ]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in result["spans"]:
        by_name.setdefault(span["name"], []).append(span)
    [request] = by_name["request"]
    [report] = by_name["task report"]
    assert _linked_to(report, request)["aiohttp_jobs.task.cause"] == "run_now"
    # Every attempt of the run links to the request, saying which it is.
    first, retry = by_name["task on_order"]
    for attempt, span in enumerate((first, retry)):
        assert span["parent"] is None
        assert _linked_to(span, request) == {
            "aiohttp_jobs.task.name": "on_order",
            "aiohttp_jobs.task.run_id": span["attributes"]["aiohttp_jobs.task.run_id"],
            "aiohttp_jobs.task.attempt": attempt,
            "aiohttp_jobs.task.cause": "fire",
        }
    assert not by_name["task hold"][0]["links"]  # fired outside any span


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
