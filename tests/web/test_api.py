"""The aiohttp API: setup, getters, spawn, shield, @atomic, back-pressure."""

from __future__ import annotations

import asyncio
import gc
import inspect
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import RawTestServer, TestClient, make_mocked_request

import aiohttp_jobs
from aiohttp_jobs import (
    SCHEDULER_KEY,
    TASKS_KEY,
    ConfigError,
    Context,
    Job,
    JobState,
    NotAwaitableError,
    Priority,
    Scheduler,
    SchedulerClosedError,
    SetupError,
    TaskRuntime,
    Tasks,
)
from aiohttp_jobs.testing import FakeClock
from aiohttp_jobs.web._state import SCHEDULER_OPTIONS, STATE_KEY

ClientFactory = Any  # pytest-aiohttp's aiohttp_client fixture


async def test_get_scheduler_without_setup_tells_to_call_setup(
    aiohttp_client: ClientFactory,
) -> None:
    async def handler(request: web.Request) -> web.Response:
        with pytest.raises(SetupError, match=r"aiohttp_jobs\.setup\(app\)"):
            aiohttp_jobs.get_scheduler(request)
        assert aiohttp_jobs.get_scheduler_from_request(request) is None
        assert aiohttp_jobs.get_scheduler_from_app(request.app) is None
        return web.Response(text="checked")

    app = web.Application()
    app.router.add_get("/", handler)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    resp = await client.get("/")
    assert await resp.text() == "checked"


def test_setup_twice_is_an_error() -> None:
    app = web.Application()
    aiohttp_jobs.setup(app)
    with pytest.raises(SetupError, match="called twice"):
        aiohttp_jobs.setup(app)


def test_setup_checks_scheduler_options_at_once() -> None:
    with pytest.raises(ConfigError):
        aiohttp_jobs.setup(web.Application(), limit=0)
    with pytest.raises(ConfigError, match="retry_after"):
        aiohttp_jobs.setup(web.Application(), retry_after=0)


_NAN, _INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("wait_timeout", _NAN),
        ("wait_timeout", _INF),
        ("wait_timeout", -1),
        ("wait_timeout", "5"),
        ("close_timeout", _NAN),
        ("close_timeout", "5"),
        ("start_timeout_warning", _NAN),
        ("start_timeout_critical", _INF),
        ("limit", 0),
        ("limit", 1.5),
        ("limit", True),
        ("pending_limit", -1),
        ("pending_limit", _NAN),
        ("reserve_normal", -1),
        ("reserve_high", "1"),
        ("history_limit", -1),
        ("thread_pool_size", 0),
        ("process_pool_size", 2.0),
        ("exception_handler", "log"),
        ("on_start_timeout", 42),
        ("loops", "reports"),
        ("retry_after", _NAN),
        ("retry_after", _INF),
        ("retry_after", -1),
        ("retry_after", "1"),
        ("reject_when_full", "yes"),
        ("reject_when_full", None),
        ("tasks", object()),
        ("clock", 12.0),
        ("max_jobs", 10),
    ],
)
def test_setup_refuses_a_bad_option_naming_it(option: str, value: object) -> None:
    """Every setup() argument is checked at the call, with an error that names
    it and shows the value (a NaN wait_timeout used to act as 0 at shutdown)."""
    app = web.Application()
    with pytest.raises(ConfigError, match=option) as info:
        aiohttp_jobs.setup(app, **{option: value})
    assert repr(value) in str(info.value)
    assert STATE_KEY not in app  # nothing half set up


def test_setup_refuses_what_is_not_an_application() -> None:
    with pytest.raises(ConfigError, match=r"app must be an aiohttp web\.Application"):
        aiohttp_jobs.setup(object())  # type: ignore[arg-type]


def test_every_scheduler_option_is_checked_by_setup() -> None:
    assert set(SCHEDULER_OPTIONS) == set(aiohttp_jobs.SchedulerOptions.__annotations__)


def test_setup_accepts_the_documented_values() -> None:
    aiohttp_jobs.setup(
        web.Application(),
        wait_timeout=None,
        close_timeout=0,
        limit=None,
        pending_limit=0,
        retry_after=0.5,
        reject_when_full=True,
        thread_pool_size=None,
        exception_handler=None,
    )


async def test_without_an_application_every_entry_point_raises_setup_error() -> None:
    """A request of aiohttp's low-level server has no application: a SetupError
    (it used to be an AttributeError), and a spawned coroutine is closed."""
    seen: list[str] = []

    async def job() -> None:  # pragma: no cover - must never run
        raise AssertionError("ran")

    async def handler(request: web.BaseRequest) -> web.Response:
        coro = job()
        with pytest.raises(SetupError, match="low-level server"):
            await aiohttp_jobs.spawn(request, coro)  # type: ignore[arg-type]
        coro = job()
        with pytest.raises(SetupError):
            aiohttp_jobs.shield(request, coro)  # type: ignore[arg-type]
        for getter in (
            aiohttp_jobs.get_scheduler,
            aiohttp_jobs.get_scheduler_from_request,
            aiohttp_jobs.get_tasks,
        ):
            with pytest.raises(SetupError):
                getter(request)  # type: ignore[arg-type]

        @aiohttp_jobs.atomic
        async def atomic(request: web.Request) -> web.Response:
            raise AssertionError("ran")  # pragma: no cover

        with pytest.raises(SetupError):
            await atomic(request)  # type: ignore[arg-type]
        seen.append("checked")
        return web.Response()

    server = RawTestServer(handler)
    async with TestClient(server) as client:
        assert (await client.get("/")).status == 200
    gc.collect()  # every coroutine was closed: no "never awaited" warning
    assert seen == ["checked"]


async def test_spawn_with_something_else_than_a_request_names_the_parameter() -> None:
    coro = asyncio.sleep(0)
    with pytest.raises(ConfigError, match=r"request must be an aiohttp web\.Request"):
        await aiohttp_jobs.spawn("/orders", coro)  # type: ignore[arg-type]
    gc.collect()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("retry_after", _NAN),
        ("retry_after", _INF),
        ("retry_after", 0),
        ("retry_after", "5"),
        ("reject_when_full", "yes"),
        ("reject_when_full", 1),
    ],
)
async def test_spawn_refuses_a_bad_option_and_closes_the_coroutine(
    aiohttp_client: ClientFactory, option: str, value: object
) -> None:
    async def job() -> None:  # pragma: no cover - must never run
        raise AssertionError("ran")

    async def handler(request: web.Request) -> web.Response:
        coro = job()
        with pytest.raises(ConfigError, match=option) as info:
            await aiohttp_jobs.spawn(request, coro, **{option: value})
        assert repr(value) in str(info.value)
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
        return web.Response(text="refused")

    app = web.Application()
    aiohttp_jobs.setup(app)
    app.router.add_post("/", handler)
    client = await aiohttp_client(app)
    assert await (await client.post("/")).text() == "refused"


def test_atomic_refuses_what_cannot_be_a_handler() -> None:
    with pytest.raises(ConfigError, match=r"handler must be a callable, got 'pay'"):
        aiohttp_jobs.atomic("pay")  # type: ignore[arg-type]


async def test_shield_refuses_what_cannot_be_awaited() -> None:
    app = web.Application()
    aiohttp_jobs.setup(app)
    request = make_mocked_request("POST", "/", app=app)
    with pytest.raises(NotAwaitableError, match=r"arg must be an awaitable.*got 0"):
        aiohttp_jobs.shield(request, 0)  # type: ignore[arg-type]


async def test_a_view_finds_the_scheduler_like_its_request(
    aiohttp_client: ClientFactory,
) -> None:
    class JobsView(web.View):
        async def get(self) -> web.Response:
            scheduler = aiohttp_jobs.get_scheduler(self)  # type: ignore[arg-type]
            assert scheduler is aiohttp_jobs.get_scheduler(self.request)
            return web.Response(text="same")

    app = web.Application()
    aiohttp_jobs.setup(app)
    app.router.add_view("/", JobsView)
    client = await aiohttp_client(app)
    assert await (await client.get("/")).text() == "same"


async def test_atomic_without_setup_tells_to_call_setup() -> None:
    @aiohttp_jobs.atomic
    async def handler(request: web.Request) -> web.Response:
        raise AssertionError("must not run")  # pragma: no cover

    request = make_mocked_request("POST", "/", app=web.Application())
    with pytest.raises(SetupError, match=r"aiohttp_jobs\.setup\(app\)"):
        await handler(request)
    gc.collect()  # the handler's coroutine was closed: no "never awaited" warning


async def test_spawn_without_setup_closes_the_coroutine() -> None:
    ran = False

    async def job() -> None:  # pragma: no cover - must never run
        nonlocal ran
        ran = True

    request = make_mocked_request("POST", "/", app=web.Application())
    with pytest.raises(SetupError):
        await aiohttp_jobs.spawn(request, job())
    gc.collect()  # filterwarnings=error turns "never awaited" into a failure
    assert not ran


async def test_sub_application_handlers_use_the_root_scheduler(
    aiohttp_client: ClientFactory,
) -> None:
    seen: list[Scheduler] = []

    async def handler(request: web.Request) -> web.Response:
        scheduler = aiohttp_jobs.get_scheduler(request)
        seen.append(scheduler)
        assert aiohttp_jobs.get_scheduler_from_request(request) is scheduler
        job = await aiohttp_jobs.spawn(request, asyncio.sleep(0, "sub"), "in-sub")
        return web.Response(text=await job.wait())

    root = web.Application()
    aiohttp_jobs.setup(root, limit=5)
    sub = web.Application()
    sub.router.add_get("/x", handler)
    root.add_subapp("/sub", sub)
    client = await aiohttp_client(root)
    resp = await client.get("/sub/x")
    assert resp.status == 200
    assert await resp.text() == "sub"
    assert seen == [root[SCHEDULER_KEY]]
    assert aiohttp_jobs.get_scheduler_from_app(root) is seen[0]
    assert seen[0].limit == 5
    assert [job.name for job in seen[0].history.query()] == ["in-sub"]


async def test_spawn_passes_name_priority_and_tags(
    aiohttp_client: ClientFactory,
) -> None:
    jobs: list[Job[int]] = []

    async def compute() -> int:
        return 42

    async def handler(request: web.Request) -> web.Response:
        job = await aiohttp_jobs.spawn(
            request, compute(), "compute", priority=Priority.HIGH, tags=("a", "b")
        )
        jobs.append(job)
        return web.json_response({"id": job.id, "result": await job.wait()})

    app = web.Application()
    aiohttp_jobs.setup(app)
    app.router.add_post("/", handler)
    client = await aiohttp_client(app)
    resp = await client.post("/")
    body = await resp.json()
    assert body == {"id": jobs[0].id, "result": 42}
    assert (jobs[0].name, jobs[0].priority, jobs[0].tags) == (
        "compute",
        Priority.HIGH,
        ("a", "b"),
    )


class _Item(web.View):
    @aiohttp_jobs.atomic
    async def post(self) -> web.Response:
        await asyncio.sleep(0)
        return web.json_response({"view": self.request.match_info["name"]})


async def test_atomic_returns_the_response_of_handlers_and_views(
    aiohttp_client: ClientFactory,
) -> None:
    @aiohttp_jobs.atomic
    async def plain(request: web.Request) -> web.Response:
        """Plain handler."""
        await asyncio.sleep(0)
        return web.json_response({"plain": True}, status=201)

    app = web.Application()
    aiohttp_jobs.setup(app)
    app.router.add_post("/plain", plain)
    app.router.add_view("/items/{name}", _Item)
    client = await aiohttp_client(app)

    resp = await client.post("/plain")
    assert resp.status == 201
    assert await resp.json() == {"plain": True}
    resp = await client.post("/items/x")
    assert resp.status == 200
    assert await resp.json() == {"view": "x"}
    assert plain.__name__ == "plain"
    assert plain.__doc__ == "Plain handler."


async def test_atomic_propagates_http_errors_and_exceptions(
    aiohttp_client: ClientFactory,
) -> None:
    @aiohttp_jobs.atomic
    async def not_found(request: web.Request) -> web.Response:
        await asyncio.sleep(0)
        raise web.HTTPNotFound(text="nope")

    @aiohttp_jobs.atomic
    async def broken(request: web.Request) -> web.Response:
        await asyncio.sleep(0)
        raise ValueError("boom")

    app = web.Application()
    aiohttp_jobs.setup(app)
    app.router.add_get("/404", not_found)
    app.router.add_get("/500", broken)
    client = await aiohttp_client(app)
    resp = await client.get("/404")
    assert (resp.status, await resp.text()) == (404, "nope")
    resp = await client.get("/500")
    assert resp.status == 500


async def test_shield_protects_work_from_the_caller_cancellation() -> None:
    app = web.Application()
    aiohttp_jobs.setup(app)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        request = make_mocked_request("POST", "/", app=app)
        gate = asyncio.Event()

        async def work() -> str:
            await gate.wait()
            return "done"

        fut = aiohttp_jobs.shield(request, work())
        waiter = asyncio.ensure_future(fut)
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        other = aiohttp_jobs.shield(request, work())
        gate.set()
        assert await other == "done"
    finally:
        await runner.cleanup()


async def test_spawn_answers_503_with_retry_after_when_the_pending_list_is_full(
    aiohttp_client: ClientFactory,
) -> None:
    gate = asyncio.Event()

    async def blocked() -> None:
        await gate.wait()

    async def handler(request: web.Request) -> web.Response:
        reject = {"yes": True, "no": False}.get(request.query.get("reject", ""))
        retry = float(request.query["retry"]) if "retry" in request.query else None
        prio = request.query.get("prio", "normal")
        job = await aiohttp_jobs.spawn(
            request,
            blocked(),
            priority=prio,
            reject_when_full=reject,
            retry_after=retry,
        )
        return web.Response(text=job.id, status=202)

    app = web.Application()
    aiohttp_jobs.setup(
        app, limit=1, pending_limit=1, reserve_high=1, reject_when_full=True
    )
    app.router.add_post("/", handler)
    client = await aiohttp_client(app)

    assert (await client.post("/")).status == 202  # runs
    assert (await client.post("/")).status == 202  # pending: the list is now full
    resp = await client.post("/")
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "1"
    assert "too much background work" in await resp.text()
    resp = await client.post("/?retry=2.5")
    assert resp.headers["Retry-After"] == "3"
    # Only a job that would wait is refused: a high-priority one still finds its
    # reserved slot free, once.
    assert (await client.post("/?prio=high")).status == 202
    assert (await client.post("/?prio=high")).status == 503
    # CRITICAL jobs never wait for a pending place, so they are never refused.
    assert (await client.post("/?prio=critical")).status == 202

    # Opting out per call: the handler waits for a place instead.
    waiting = asyncio.ensure_future(client.post("/?reject=no"))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    gate.set()
    resp = await waiting
    assert resp.status == 202


async def test_back_pressure_is_opt_in(aiohttp_client: ClientFactory) -> None:
    scheduler_full = asyncio.Event()
    gate = asyncio.Event()

    async def blocked() -> None:
        await gate.wait()

    async def handler(request: web.Request) -> web.Response:
        if aiohttp_jobs.get_scheduler(request).full:
            scheduler_full.set()
        reject = request.query.get("reject") == "yes"
        await aiohttp_jobs.spawn(request, blocked(), reject_when_full=reject or None)
        return web.Response(status=202)

    app = web.Application()
    aiohttp_jobs.setup(app, limit=1, pending_limit=1)
    app.router.add_post("/", handler)
    client = await aiohttp_client(app)
    await client.post("/")
    await client.post("/")
    assert (await client.post("/?reject=yes")).status == 503
    waiting = asyncio.ensure_future(client.post("/"))
    await scheduler_full.wait()
    assert not waiting.done()
    gate.set()
    assert (await waiting).status == 202


async def test_spawn_is_refused_once_shutdown_has_begun(serve: Any) -> None:
    app = web.Application()
    aiohttp_jobs.setup(app)
    runner, _ = await serve(app)
    request = make_mocked_request("POST", "/", app=app)
    scheduler = app[SCHEDULER_KEY]
    await runner.shutdown()  # what aiohttp runs first: on_shutdown
    assert scheduler.closed
    refused = asyncio.sleep(0)
    with pytest.raises(SchedulerClosedError):
        await aiohttp_jobs.spawn(request, refused)
    refused.close()  # as with aiojobs, a refused coroutine is left to its owner
    with pytest.raises(web.HTTPServiceUnavailable) as info:
        await aiohttp_jobs.spawn(request, asyncio.sleep(0), reject_when_full=True)
    assert info.value.headers["Retry-After"] == "1"
    with pytest.raises(web.HTTPServiceUnavailable):
        aiohttp_jobs.shield(request, asyncio.sleep(0))
    gc.collect()


class _FakeRuntime:
    def __init__(self, log: list[str]) -> None:
        self.log = log


class _FakeTasks:
    """Stands in for ``aiohttp_jobs.Tasks``: only the ``runtime()`` contract."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.received: dict[str, object] = {}

    @asynccontextmanager
    async def runtime(
        self, *, app: web.Application, scheduler: Scheduler, clock: object
    ) -> AsyncIterator[_FakeRuntime]:
        self.received = {"app": app, "scheduler": scheduler, "clock": clock}
        self.log.append("runtime started")
        try:
            yield _FakeRuntime(self.log)
        finally:
            # Its in-flight runs may still spawn: the scheduler is not draining yet.
            assert not scheduler.draining
            job = await scheduler.spawn(asyncio.sleep(0), "last-run")
            await job.wait()
            self.log.append("runtime stopped")


async def test_task_runtime_starts_with_the_app_and_stops_before_the_drain(
    serve: Any,
) -> None:
    tasks = _FakeTasks()
    clock = FakeClock(0)
    app = web.Application()
    aiohttp_jobs.setup(app, tasks=tasks, clock=clock)  # type: ignore[arg-type]

    async def handler(request: web.Request) -> web.Response:
        runtime = aiohttp_jobs.get_tasks(request)
        assert runtime is aiohttp_jobs.get_tasks(request.app)
        assert isinstance(runtime, _FakeRuntime)
        return web.Response(text=",".join(runtime.log))

    app.router.add_get("/", handler)
    runner, port = await serve(app)
    scheduler = app[SCHEDULER_KEY]
    assert tasks.received == {"app": app, "scheduler": scheduler, "clock": clock}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/") as resp,
    ):
        assert await resp.text() == "runtime started"
    await runner.cleanup()
    assert tasks.log == ["runtime started", "runtime stopped"]
    assert scheduler.closed
    assert [job.name for job in scheduler.history.query()] == ["last-run"]


async def test_get_tasks_without_a_registry_is_an_error() -> None:
    app = web.Application()
    with pytest.raises(SetupError, match=r"aiohttp_jobs\.setup\(app\)"):
        aiohttp_jobs.get_tasks(app)
    aiohttp_jobs.setup(app)
    with pytest.raises(SetupError, match="tasks=tasks"):
        aiohttp_jobs.get_tasks(app)


async def test_scheduler_is_created_at_startup_and_closed_at_cleanup(
    serve: Any,
) -> None:
    app = web.Application()
    aiohttp_jobs.setup(app, close_timeout=0.5)
    assert aiohttp_jobs.get_scheduler_from_app(app) is None
    runner, _ = await serve(app)
    scheduler = aiohttp_jobs.get_scheduler_from_app(app)
    assert scheduler is not None
    assert scheduler.close_timeout == 0.5
    assert not scheduler.closed
    await runner.cleanup()
    assert scheduler.closed


async def test_atomic_handler_keeps_its_own_timeouts_and_task_groups(
    aiohttp_client: ClientFactory,
) -> None:
    @aiohttp_jobs.atomic
    async def bounded(request: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(asyncio.Event().wait(), 0.01)
        except TimeoutError:
            return web.Response(text="timed out inside")
        raise AssertionError("unreachable")  # pragma: no cover

    @aiohttp_jobs.atomic
    async def cancels_sub_task(request: web.Request) -> web.Response:
        sub = asyncio.ensure_future(asyncio.Event().wait())
        await asyncio.sleep(0)
        sub.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sub
        return web.Response(text="sub-task cancelled")

    app = web.Application()
    aiohttp_jobs.setup(app)
    app.router.add_get("/bounded", bounded)
    app.router.add_get("/sub", cancels_sub_task)
    client = await aiohttp_client(app)
    assert await (await client.get("/bounded")).text() == "timed out inside"
    assert await (await client.get("/sub")).text() == "sub-task cancelled"


async def test_atomic_handler_keeps_asyncio_timeout(
    aiohttp_client: ClientFactory,
) -> None:
    @aiohttp_jobs.atomic
    async def bounded(request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(0.01):
                await asyncio.Event().wait()
        except TimeoutError:
            return web.Response(text="timed out inside")
        raise AssertionError("unreachable")  # pragma: no cover

    app = web.Application()
    aiohttp_jobs.setup(app)
    app.router.add_get("/", bounded)
    client = await aiohttp_client(app)
    assert await (await client.get("/")).text() == "timed out inside"


async def test_setup_runs_a_tasks_registry_for_the_life_of_the_app(
    serve: Any,
) -> None:
    tasks = Tasks()
    clock = FakeClock()
    runs: list[object] = []

    @tasks.task(interval=10)
    async def tick(ctx: Context) -> None:
        runs.append(ctx.app)

    app = web.Application()
    aiohttp_jobs.setup(app, tasks=tasks, clock=clock)
    runner, _ = await serve(app)
    runtime = aiohttp_jobs.get_tasks(app)
    assert isinstance(runtime, TaskRuntime)
    assert app[TASKS_KEY] is runtime
    await clock.advance(20)
    assert runs == [app, app]
    scheduler = app[SCHEDULER_KEY]
    assert [job.state for job in scheduler.history.query(name="tick")] == [
        JobState.SUCCEEDED,
        JobState.SUCCEEDED,
    ]
    await runner.cleanup()
    await clock.advance(20)  # stopped with the app: no more runs
    assert len(runs) == 2
    assert scheduler.closed


async def test_atomic_handler_of_a_sub_application(
    aiohttp_client: ClientFactory,
) -> None:
    @aiohttp_jobs.atomic
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(0)
        return web.Response(text="from the sub-app")

    root = web.Application()
    aiohttp_jobs.setup(root)
    sub = web.Application()
    sub.router.add_post("/x", handler)
    root.add_subapp("/sub", sub)
    client = await aiohttp_client(root)
    resp = await client.post("/sub/x")
    assert await resp.text() == "from the sub-app"


def test_scheduler_options_match_the_scheduler_constructor() -> None:
    """setup()'s typed **scheduler_options stay in step with Scheduler()."""
    params = inspect.signature(Scheduler).parameters
    # clock is setup()'s own parameter: the scheduler and the task runtime share it.
    options = set(aiohttp_jobs.SchedulerOptions.__annotations__)
    assert options | {"clock"} == set(params)
    assert "clock" in inspect.signature(aiohttp_jobs.setup).parameters


async def test_spawn_passes_delay_and_loop_to_the_scheduler_on_the_apps_clock(
    aiohttp_client: Any,
) -> None:
    """setup(clock=...) is the scheduler's clock too: a delayed job waits for it."""
    clock = FakeClock(start=1_000.0)
    threads: list[str] = []

    async def in_loop() -> None:
        threads.append(threading.current_thread().name)

    async def handler(request: web.Request) -> web.Response:
        later = await aiohttp_jobs.spawn(request, asyncio.sleep(0), "later", delay=60)
        there = await aiohttp_jobs.spawn(request, in_loop(), "there", loop="side")
        await there.wait()
        return web.json_response({"later": later.id, "scheduled": later.scheduled})

    app = web.Application()
    aiohttp_jobs.setup(app, clock=clock)
    app.router.add_post("/", handler)
    client = await aiohttp_client(app)
    resp = await client.post("/")
    body = await resp.json()
    assert body["scheduled"] is True and threads and threads[0] != "MainThread"
    scheduler = app[SCHEDULER_KEY]
    later = scheduler.get_job(body["later"])
    await clock.advance(59)
    assert later.scheduled
    await clock.advance(1)
    assert await later.wait() is None


def test_atomic_refuses_a_plain_function_at_decoration() -> None:
    def plain(request: web.Request) -> web.Response:
        return web.Response()

    class Handler:
        async def __call__(self, request: web.Request) -> web.Response:
            return web.Response()

    with pytest.raises(aiohttp_jobs.ConfigTypeError, match="handler must be an async"):
        aiohttp_jobs.atomic(plain)  # type: ignore[arg-type]
    assert callable(aiohttp_jobs.atomic(Handler()))
