"""Client disconnects over real TCP sockets: @atomic work always completes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

import aiohttp_jobs

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Probe:
    """Per-request events, keyed by the request's ``?n=`` number."""

    def __init__(self) -> None:
        self.started: dict[str, asyncio.Event] = {}
        self.cancelled: dict[str, asyncio.Event] = {}
        self.completed: dict[str, asyncio.Event] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    async def aiohttp_cancelled(self, n: str) -> None:
        """Until aiohttp has cancelled the request's task. With @atomic (Python
        3.11+) the CancelledError itself reaches the handler's caller only
        once the work is done."""
        for _ in range(5000):
            if self.cancelled[n].is_set():
                return
            task = self.tasks.get(n)
            if task is not None and task.cancelling():
                return
            await asyncio.sleep(0.001)
        raise AssertionError("aiohttp never cancelled the handler")  # pragma: no cover

    def events(self, n: str) -> None:
        for table in (self.started, self.cancelled, self.completed, self.gates):
            table.setdefault(n, asyncio.Event())

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> Any:
        """Notices when aiohttp cancels the handler (the client went away)."""
        n = request.query["n"]
        task = asyncio.current_task()
        assert task is not None
        self.tasks[n] = task
        try:
            return await handler(request)
        except asyncio.CancelledError:
            self.cancelled[n].set()
            raise


async def _side_effect(request: web.Request, probe: Probe) -> web.Response:
    n = request.query["n"]
    probe.started[n].set()
    steps = int(request.query.get("steps", "0"))
    if steps:
        for _ in range(steps):
            await asyncio.sleep(0)
    else:
        await probe.gates[n].wait()
    probe.completed[n].set()  # the "database write"
    return web.Response(text="written")


async def _app(serve: Any, probe: Probe) -> int:
    async def plain(request: web.Request) -> web.Response:
        return await _side_effect(request, probe)

    @aiohttp_jobs.atomic
    async def atomic(request: web.Request) -> web.Response:
        return await _side_effect(request, probe)

    app = web.Application(middlewares=[probe.middleware])
    aiohttp_jobs.setup(app)
    app.router.add_post("/plain", plain)
    app.router.add_post("/atomic", atomic)
    # handler_cancellation=True: aiohttp cancels a handler when its client goes
    # away (the default since 3.9 lets it run on, but shutdown still cancels).
    _, port = await serve(app, handler_cancellation=True)
    return port


async def _send(port: int, path: str) -> asyncio.StreamWriter:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n".encode()
    )
    await writer.drain()
    return writer


ROUNDS = 50


async def test_atomic_handler_finishes_after_client_disconnect(serve: Any) -> None:
    probe = Probe()
    port = await _app(serve, probe)
    for i in range(ROUNDS):
        n = str(i)
        probe.events(n)
        writer = await _send(port, f"/atomic?n={n}")
        await probe.started[n].wait()
        writer.transport.abort()  # hang up mid-handler
        await probe.aiohttp_cancelled(n)  # aiohttp did cancel the handler...
        assert not probe.completed[n].is_set()
        probe.gates[n].set()
        await asyncio.wait_for(probe.completed[n].wait(), 5)  # ...not the work
        await asyncio.wait_for(probe.cancelled[n].wait(), 5)  # as aiohttp expects


async def test_plain_handler_is_cancelled_by_client_disconnect(serve: Any) -> None:
    probe = Probe()
    port = await _app(serve, probe)
    for i in range(ROUNDS // 5):
        n = str(i)
        probe.events(n)
        writer = await _send(port, f"/plain?n={n}")
        await probe.started[n].wait()
        writer.transport.abort()
        await probe.cancelled[n].wait()
        probe.gates[n].set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert not probe.completed[n].is_set()


@pytest.mark.parametrize("steps", [1, 3, 10, 30])
async def test_atomic_work_completes_whatever_the_disconnect_point(
    serve: Any, steps: int
) -> None:
    probe = Probe()
    port = await _app(serve, probe)
    for i in range(ROUNDS):
        n = str(i)
        probe.events(n)
        writer = await _send(port, f"/atomic?n={n}&steps={steps}")
        for _ in range(i % (steps + 3)):
            await asyncio.sleep(0)
        writer.transport.abort()
        # The handler may not have begun when the client hung up: only begun
        # handlers are promised to finish. Give it the chance to begin.
        started = asyncio.ensure_future(probe.started[n].wait())
        await asyncio.wait((started,), timeout=0.02)
        started.cancel()
        if probe.started[n].is_set():
            await asyncio.wait_for(probe.completed[n].wait(), 5)


async def test_client_that_stays_gets_the_atomic_response(serve: Any) -> None:
    probe = Probe()
    port = await _app(serve, probe)
    probe.events("0")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /atomic?n=0&steps=3 HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert data.endswith(b"written")


async def test_atomic_failure_after_disconnect_is_logged(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Probe()
    probe.events("0")

    @aiohttp_jobs.atomic
    async def fails(request: web.Request) -> web.Response:
        probe.started["0"].set()
        await probe.gates["0"].wait()
        raise ValueError("the database said no")

    app = web.Application(middlewares=[probe.middleware])
    aiohttp_jobs.setup(app)
    app.router.add_post("/fails", fails)
    _, port = await serve(app, handler_cancellation=True)
    writer = await _send(port, "/fails?n=0")
    await probe.started["0"].wait()
    writer.transport.abort()
    await probe.aiohttp_cancelled("0")
    with caplog.at_level(logging.ERROR, logger="aiohttp_jobs.web"):
        probe.gates["0"].set()
        await asyncio.wait_for(probe.cancelled["0"].wait(), 5)
    (record,) = [r for r in caplog.records if r.name == "aiohttp_jobs.web"]
    assert record.getMessage() == (
        "atomic handler for POST /fails failed after its request was cancelled"
    )
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)
