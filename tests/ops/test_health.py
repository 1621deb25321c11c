"""Health checks: liveness, readiness (store reachable, not draining), and a
readiness that turns 503 as soon as a graceful shutdown begins, observed over
real sockets, also in a real server process sent SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import SCHEDULER_KEY, ConfigError, ConfigTypeError, Context, Tasks
from aiohttp_jobs.stores import MemoryStore
from aiohttp_jobs.web._health import HEALTH_KEY
from tests.helpers import python_process


async def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as resp,
    ):
        return resp.status, await resp.json()


async def test_live_and_ready_answer_with_json_details(aiohttp_client: Any) -> None:
    app = web.Application()
    aiohttp_jobs.setup(app, health="/health", limit=7)
    client = await aiohttp_client(app)
    live = await client.get("/health/live")
    assert live.status == 200
    assert live.headers["Cache-Control"] == "no-store"
    body = await live.json()
    assert body["status"] == "ok" and body["loop_lag_seconds"] >= 0
    ready = await client.get("/health/ready")
    assert ready.status == 200
    assert await ready.json() == {
        "status": "ok",
        "scheduler": {"state": "running", "active": 0, "pending": 0, "limit": 7},
        "shutting_down": False,
    }


class _BrokenStore(MemoryStore):
    broken = False

    async def next_due(self) -> float | None:
        if self.broken:
            raise ConnectionError("store unreachable")
        return await super().next_due()


async def test_ready_asks_the_task_store(aiohttp_client: Any) -> None:
    store = _BrokenStore()
    tasks = Tasks(store=store)

    @tasks.task(interval=3600)
    async def tick(ctx: Context) -> None:
        pass

    app = web.Application()
    aiohttp_jobs.setup(app, tasks=tasks, health="/ops/health")
    client = await aiohttp_client(app)
    ok = await client.get("/ops/health/ready")
    assert ok.status == 200
    assert (await ok.json())["store"]["ok"] is True
    store.broken = True
    down = await client.get("/ops/health/ready")
    assert down.status == 503
    body = await down.json()
    assert body["status"] == "unavailable"
    assert body["reasons"] == ["the task store did not answer"]
    assert body["store"] == {
        "ok": False,
        "error": "ConnectionError: store unreachable",
    }
    assert (await client.get("/ops/health/live")).status == 200
    store.broken = False


async def test_ready_turns_503_when_shutdown_begins_and_the_port_outlives_the_drain(
    serve: Any,
) -> None:
    started, gate = asyncio.Event(), asyncio.Event()

    @aiohttp_jobs.atomic
    async def write(request: web.Request) -> web.Response:
        started.set()
        await gate.wait()
        return web.Response(text="written")

    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=10, health="/health", health_port=0)
    app.router.add_post("/write", write)
    runner, port = await serve(app)
    health_port = app[HEALTH_KEY].port
    assert health_port and health_port != port
    assert (await _get(health_port, "/health/ready"))[0] == 200
    assert (await _get(port, "/health/ready"))[0] == 200
    async with aiohttp.ClientSession() as session:
        request = asyncio.ensure_future(session.post(f"http://127.0.0.1:{port}/write"))
        await started.wait()
        cleanup = asyncio.ensure_future(runner.cleanup())
        for _ in range(2000):  # a few seconds at most, on a busy machine
            status, body = await _get(health_port, "/health/ready")
            if status == 503:
                break
            await asyncio.sleep(0.005)  # pragma: no cover - timing
        assert status == 503
        assert body["shutting_down"] is True
        assert "a graceful shutdown has begun" in body["reasons"]
        assert (await _get(health_port, "/health/live"))[0] == 200
        assert not cleanup.done() and not request.done()  # the drain goes on
        with pytest.raises(aiohttp.ClientConnectionError):
            await _get(port, "/health/ready")  # aiohttp closed this port first
        gate.set()
        resp = await request
        assert await resp.text() == "written"
        await cleanup
    with pytest.raises(aiohttp.ClientConnectionError):
        await _get(health_port, "/health/ready")  # closed after the drain


def test_health_options_are_checked_at_setup() -> None:
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"health": "health"}, ConfigError, "path prefix"),
        ({"health": "/health/"}, ConfigError, "path prefix"),
        ({"health": 5}, ConfigTypeError, "health"),
        ({"health_port": 8081}, ConfigError, "needs health="),
        ({"health": "/h", "health_port": 70000}, ConfigError, "health_port"),
        ({"health": "/h", "health_host": 1}, ConfigTypeError, "health_host"),
    ]
    for options, error, match in cases:
        with pytest.raises(error, match=match):
            aiohttp_jobs.setup(web.Application(), **options)


_SIGTERM_APP = textwrap.dedent(
    """
    import asyncio, socket, sys
    from aiohttp import web
    import aiohttp_jobs
    from aiohttp_jobs.web._health import HEALTH_KEY

    @aiohttp_jobs.atomic
    async def write(request):
        print("started", flush=True)
        loop = asyncio.get_running_loop()
        line = await loop.run_in_executor(None, sys.stdin.readline)
        print("side effect done:", line.strip(), flush=True)
        return web.Response(text="written")

    async def announce(app):
        print("health", app[HEALTH_KEY].port, flush=True)

    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=10, health="/health", health_port=0,
                       health_host="127.0.0.1")
    app.on_startup.append(announce)
    app.router.add_post("/write", write)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print("port", sock.getsockname()[1], flush=True)
    web.run_app(app, sock=sock, print=None, handler_cancellation=True,
                shutdown_timeout=0.01)
    print("exited cleanly", flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_sigterm_turns_readiness_503_while_the_drain_runs(
    tmp_path: Path,
) -> None:
    script = tmp_path / "app.py"
    script.write_text(_SIGTERM_APP)
    async with python_process(str(script), stdin=True) as child:
        proc, line = child.proc, child.line
        assert proc.stdin is not None
        port = int((await line()).split()[1])
        health_port = int((await line()).split()[1])
        assert (await _get(health_port, "/health/ready"))[0] == 200
        async with aiohttp.ClientSession() as session:
            request = asyncio.ensure_future(
                session.post(f"http://127.0.0.1:{port}/write")
            )
            assert await line() == "started"
            proc.send_signal(signal.SIGTERM)
            for _ in range(2000):  # a few seconds at most, on a busy machine
                status, body = await _get(health_port, "/health/ready")
                if status == 503:
                    break
                await asyncio.sleep(0.005)  # pragma: no cover - timing
            assert status == 503, body
            # Flipped by the first on_shutdown hook, before the drain starts.
            assert body["scheduler"]["state"] in ("running", "draining")
            assert body["shutting_down"] is True
            # The atomic handler still holds the drain open: nothing answered.
            assert not request.done()
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
            resp = await request
            assert resp.status == 200
            assert await resp.text() == "written"
        assert await line() == "side effect done: go"
        assert await line() == "exited cleanly"
        assert await asyncio.wait_for(proc.wait(), 20) == 0


async def test_ready_is_503_before_the_application_starts() -> None:
    app = web.Application()
    aiohttp_jobs.setup(app, health="/health")
    health = app[HEALTH_KEY]
    resp = await health.ready(None)  # type: ignore[arg-type]
    assert resp.status == 503
    assert SCHEDULER_KEY not in app
