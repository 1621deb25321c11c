"""``aiohttp_jobs.aiohttp``: code written for ``aiojobs.aiohttp`` runs unchanged
but for the import line.

The behaviour tests are written once, in aiojobs' style, and run against both
modules: what they assert holds for aiojobs and for aiohttp-jobs alike.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from types import ModuleType
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

import aiohttp_jobs
import aiohttp_jobs.aiohttp

ALIAS = "aiohttp_jobs.aiohttp"
MODULES = ["aiojobs.aiohttp", ALIAS]
FUNCTIONS = [
    "setup",
    "spawn",
    "shield",
    "atomic",
    "get_scheduler",
    "get_scheduler_from_app",
    "get_scheduler_from_request",
]


@pytest.fixture(params=MODULES)
def mod(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(request.param)


def test_alias_has_every_name_of_aiojobs_aiohttp() -> None:
    theirs = importlib.import_module("aiojobs.aiohttp")
    wanted = {*theirs.__all__, *FUNCTIONS, "AIOJOBS_SCHEDULER"}
    assert wanted <= set(aiohttp_jobs.aiohttp.__all__)
    for name in wanted:
        assert hasattr(theirs, name), name  # the test follows aiojobs' real API
        assert getattr(aiohttp_jobs.aiohttp, name) is not None


@pytest.mark.parametrize("name", FUNCTIONS)
def test_alias_accepts_every_call_that_aiojobs_accepts(name: str) -> None:
    """Each aiojobs parameter exists here with the same name, kind and place;
    the parameters aiohttp-jobs adds are optional keywords."""
    theirs = inspect.signature(
        getattr(importlib.import_module("aiojobs.aiohttp"), name)
    )
    ours = inspect.signature(getattr(aiohttp_jobs.aiohttp, name))
    ours_params = list(ours.parameters.values())
    theirs_params = list(theirs.parameters.values())
    for index, param in enumerate(theirs_params):
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            assert any(p.kind is param.kind for p in ours_params), (name, param)
            continue
        mine = ours_params[index]
        assert mine.kind == param.kind, (name, param)
        if name != "atomic":  # a decorator: its argument is never named
            assert mine.name == param.name, (name, param)
    for extra in ours_params[len(theirs_params) :]:
        assert (
            extra.kind
            in (
                inspect.Parameter.KEYWORD_ONLY,
                inspect.Parameter.VAR_KEYWORD,
            )
            or extra.default is not inspect.Parameter.empty
        ), (name, extra)


def test_alias_is_the_web_api() -> None:
    for name in FUNCTIONS:
        assert getattr(aiohttp_jobs.aiohttp, name) is getattr(aiohttp_jobs, name)
    assert aiohttp_jobs.aiohttp.AIOJOBS_SCHEDULER is aiohttp_jobs.SCHEDULER_KEY


# -- the same aiojobs-style application, run on both modules ---------------------------


async def test_aiojobs_style_application(mod: ModuleType, aiohttp_client: Any) -> None:
    failures: list[dict[str, Any]] = []
    effects: list[str] = []

    def exception_handler(scheduler: Any, context: dict[str, Any]) -> None:
        failures.append(context)

    async def work(value: str) -> str:
        await asyncio.sleep(0)
        effects.append(value)
        return value

    async def fail() -> None:
        raise ValueError("boom")

    async def spawn_handler(request: web.Request) -> web.Response:
        job = await mod.spawn(request, work("spawned"))
        return web.Response(text=await job.wait())

    async def fire_and_forget(request: web.Request) -> web.Response:
        await mod.spawn(request, fail())
        return web.Response(text="fired")

    @mod.atomic
    async def atomic_handler(request: web.Request) -> web.Response:
        return web.Response(text=await work("atomic"))

    class AtomicView(web.View):
        @mod.atomic
        async def post(self) -> web.Response:
            return web.Response(text=await work("view"))

    async def shield_handler(request: web.Request) -> web.Response:
        return web.Response(text=await mod.shield(request, work("shielded")))

    async def scheduler_handler(request: web.Request) -> web.Response:
        scheduler = mod.get_scheduler(request)
        assert scheduler is request.config_dict[mod.AIOJOBS_SCHEDULER]
        assert scheduler is mod.get_scheduler_from_request(request)
        return web.json_response({"limit": scheduler.limit})

    app = web.Application()
    mod.setup(app, limit=3, close_timeout=0.5, exception_handler=exception_handler)
    app.router.add_post("/spawn", spawn_handler)
    app.router.add_post("/fire", fire_and_forget)
    app.router.add_post("/atomic", atomic_handler)
    app.router.add_view("/view", AtomicView)
    app.router.add_post("/shield", shield_handler)
    sub = web.Application()
    sub.router.add_get("/scheduler", scheduler_handler)
    app.add_subapp("/sub", sub)

    client = await aiohttp_client(app)
    scheduler = mod.get_scheduler_from_app(app)
    assert scheduler is app[mod.AIOJOBS_SCHEDULER]
    for path, text in (
        ("/spawn", "spawned"),
        ("/atomic", "atomic"),
        ("/view", "view"),
        ("/shield", "shielded"),
    ):
        resp = await client.post(path)
        assert (resp.status, await resp.text()) == (200, text)
    resp = await client.get("/sub/scheduler")
    assert await resp.json() == {"limit": 3}
    assert (await client.post("/fire")).status == 200
    for _ in range(100):
        if failures:
            break
        await asyncio.sleep(0.001)
    [context] = failures
    assert isinstance(context["exception"], ValueError)
    assert context["job"].closed
    assert "message" in context
    await client.close()
    assert scheduler.closed
    assert sorted(effects) == ["atomic", "shielded", "spawned", "view"]


async def test_without_setup_is_a_runtime_error(mod: ModuleType) -> None:
    request = make_mocked_request("POST", "/", app=web.Application())
    with pytest.raises(RuntimeError):
        mod.get_scheduler(request)
    assert mod.get_scheduler_from_request(request) is None
    assert mod.get_scheduler_from_app(request.app) is None
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await mod.spawn(request, coro)
    coro.close()  # aiojobs leaves it open; closing twice is harmless


async def test_cleanup_waits_for_jobs_in_flight(mod: ModuleType) -> None:
    """aiojobs' promise: the application's cleanup waits (up to wait_timeout)
    for the jobs still running, then closes the scheduler."""
    done: list[str] = []

    async def slow() -> None:
        for _ in range(20):
            await asyncio.sleep(0)
        done.append("slow")

    app = web.Application()
    mod.setup(app, wait_timeout=5)
    runner = web.AppRunner(app)
    await runner.setup()
    scheduler = app[mod.AIOJOBS_SCHEDULER]
    await scheduler.spawn(slow())
    await runner.cleanup()
    assert done == ["slow"]
    assert scheduler.closed


async def test_atomic_survives_a_client_disconnect(mod: ModuleType, serve: Any) -> None:
    started, gate, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()
    cancelled = asyncio.Event()

    @mod.atomic
    async def write(request: web.Request) -> web.Response:
        started.set()
        await gate.wait()
        finished.set()
        return web.Response(text="written")

    request_tasks: list[asyncio.Task[Any]] = []

    @web.middleware
    async def notice(request: web.Request, handler: Any) -> Any:
        task = asyncio.current_task()
        assert task is not None
        request_tasks.append(task)
        try:
            return await handler(request)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def aiohttp_cancelled_the_request() -> bool:
        # aiojobs lets the CancelledError through at once; aiohttp-jobs only
        # once the work is done, so look at the request task itself too.
        return cancelled.is_set() or request_tasks[0].cancelling() > 0

    app = web.Application(middlewares=[notice])
    mod.setup(app)
    app.router.add_post("/write", write)
    _, port = await serve(app, handler_cancellation=True)
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    await asyncio.wait_for(started.wait(), 5)
    writer.transport.abort()  # the client goes away mid-handler
    for _ in range(5000):
        if aiohttp_cancelled_the_request():
            break
        await asyncio.sleep(0.001)
    assert aiohttp_cancelled_the_request()
    assert not finished.is_set()
    gate.set()
    await asyncio.wait_for(finished.wait(), 5)
    assert finished.is_set()


def test_alias_module_is_importable_by_its_aiojobs_name() -> None:
    namespace: dict[str, Any] = {}
    exec(  # the migration: only the module name of the import line changes
        "from aiohttp_jobs.aiohttp import setup, spawn, atomic, get_scheduler, "
        "shield, get_scheduler_from_app, get_scheduler_from_request, "
        "AIOJOBS_SCHEDULER",
        namespace,
    )
    assert namespace["setup"] is aiohttp_jobs.setup
