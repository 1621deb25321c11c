"""Graceful shutdown: in-flight atomic work completes within wait_timeout, what
is left is cancelled and logged; real sockets, real SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import (
    SCHEDULER_KEY,
    Context,
    JobState,
    Scheduler,
    SchedulerClosedError,
    Tasks,
)
from aiohttp_jobs.web._state import STATE_KEY
from tests.helpers import python_process


async def _until(predicate: Any, what: str) -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"timed out waiting until {what}")  # pragma: no cover


async def _post(port: int, path: str) -> tuple[asyncio.StreamReader, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    return reader, writer


async def _response(reader: asyncio.StreamReader, writer: Any) -> bytes:
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    return data


async def test_atomic_work_in_flight_at_shutdown_completes_and_answers(
    serve: Any,
) -> None:
    started, gate, done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    @aiohttp_jobs.atomic
    async def write(request: web.Request) -> web.Response:
        started.set()
        await gate.wait()
        done.set()
        return web.Response(text="written")

    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=5)
    app.router.add_post("/write", write)
    runner, port = await serve(app, handler_cancellation=True)
    scheduler = app[SCHEDULER_KEY]

    reader, writer = await _post(port, "/write")
    await started.wait()
    cleanup = asyncio.ensure_future(runner.cleanup())
    await _until(lambda: scheduler.draining, "the drain began")
    assert not cleanup.done()
    gate.set()
    data = await _response(reader, writer)
    await cleanup
    assert done.is_set()
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert data.endswith(b"written")
    assert scheduler.closed


async def test_jobs_and_shielded_work_finish_before_cleanup_contexts_exit(
    serve: Any,
) -> None:
    """A resource from a cleanup_ctx registered after setup() (a DB pool, say)
    is still open while jobs and shielded work finish during the drain."""
    gate = asyncio.Event()
    used_open_db: list[str] = []
    db_open = False

    async def db_ctx(app: web.Application) -> Any:
        nonlocal db_open
        db_open = True
        yield
        db_open = False

    async def use_db(what: str) -> None:
        await gate.wait()
        if db_open:
            used_open_db.append(what)

    async def handler(request: web.Request) -> web.Response:
        await aiohttp_jobs.spawn(request, use_db("job"), "use-db")
        aiohttp_jobs.shield(request, use_db("shield"))
        return web.Response(status=202)

    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=5)
    app.cleanup_ctx.append(db_ctx)
    app.router.add_post("/", handler)
    runner, port = await serve(app)
    scheduler = app[SCHEDULER_KEY]
    data = await _response(*await _post(port, "/"))
    assert data.startswith(b"HTTP/1.1 202")

    cleanup = asyncio.ensure_future(runner.cleanup())
    await _until(lambda: scheduler.draining, "the drain began")
    gate.set()
    await cleanup
    assert sorted(used_open_db) == ["job", "shield"]
    assert not db_open
    assert [job.state for job in scheduler.history.query()] == [JobState.SUCCEEDED]


async def test_work_past_wait_timeout_is_cancelled_and_reported(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    started = asyncio.Event()
    never = asyncio.Event()
    jobs_cancelled: list[str] = []

    async def forever(tag: str) -> None:
        try:
            await never.wait()
        except asyncio.CancelledError:
            jobs_cancelled.append(tag)
            raise

    @aiohttp_jobs.atomic
    async def slow(request: web.Request) -> web.Response:
        await aiohttp_jobs.spawn(request, forever("running"), "report-forever")
        await aiohttp_jobs.spawn(request, forever("pending"), "queued")
        started.set()
        await never.wait()
        raise AssertionError("unreachable")  # pragma: no cover

    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=0.05, close_timeout=0.05, limit=1)
    app.router.add_post("/slow", slow)
    runner, port = await serve(app, handler_cancellation=True)
    scheduler: Scheduler = app[SCHEDULER_KEY]
    reader, writer = await _post(port, "/slow")
    await started.wait()
    running, queued = list(scheduler)

    with caplog.at_level(logging.WARNING, logger="aiohttp_jobs.web"):
        await runner.cleanup()
    data = await _response(reader, writer)

    assert data.startswith(b"HTTP/1.1 503")
    assert b"Retry-After: 1" in data
    assert jobs_cancelled == ["running"]
    assert running.state is JobState.CANCELLED
    assert queued.state is JobState.CANCELLED
    messages = [record.getMessage() for record in caplog.records]
    assert any(
        f"job 'report-forever' (id={running.id}) cancelled after running" in m
        for m in messages
    ), messages
    assert any(
        f"dropped pending job 'queued' (id={queued.id})" in m for m in messages
    ), messages
    assert any(
        "atomic handler for POST /slow cancelled after running" in m for m in messages
    ), messages


async def test_cleanup_without_shutdown_still_drains() -> None:
    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=5)
    gate = asyncio.Event()
    app.on_startup.freeze()  # what AppRunner does, minus the server
    await app.startup()
    app.freeze()
    scheduler = app[SCHEDULER_KEY]
    job = await scheduler.spawn(gate.wait(), "finishes-in-cleanup")
    cleanup = asyncio.ensure_future(app.cleanup())
    await _until(lambda: scheduler.draining, "the drain began")
    gate.set()
    await cleanup
    assert job.state is JobState.SUCCEEDED
    assert scheduler.closed


_SIGTERM_APP = textwrap.dedent(
    """
    import asyncio, socket, sys
    from aiohttp import web
    import aiohttp_jobs

    @aiohttp_jobs.atomic
    async def write(request):
        print("started", flush=True)
        loop = asyncio.get_running_loop()
        line = await loop.run_in_executor(None, sys.stdin.readline)
        print("side effect done:", line.strip(), flush=True)
        return web.Response(text="written")

    async def announce(app):
        print("shutdown begins", flush=True)

    app = web.Application()
    app.on_shutdown.append(announce)  # before setup(): runs before the drain
    aiohttp_jobs.setup(app, wait_timeout=10)
    app.router.add_post("/write", write)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections wait in the backlog until run_app serves
    print("port", sock.getsockname()[1], flush=True)
    web.run_app(app, sock=sock, print=None, handler_cancellation=True,
                shutdown_timeout=0.01)
    print("exited cleanly", flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_sigterm_lets_atomic_work_finish_and_answer(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(_SIGTERM_APP)
    async with python_process(str(script), stdin=True) as child:
        proc, line = child.proc, child.line
        assert proc.stdin is not None
        port = int((await line()).split()[1])
        reader, writer = await _post(port, "/write")
        assert await line() == "started"
        proc.send_signal(signal.SIGTERM)
        assert await line() == "shutdown begins"
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        data = await _response(reader, writer)
        assert data.startswith(b"HTTP/1.1 200 OK")
        assert data.endswith(b"written")
        assert await line() == "side effect done: go"
        assert await line() == "exited cleanly"
        assert await asyncio.wait_for(proc.wait(), 20) == 0


async def test_interrupted_shutdown_reports_what_it_cuts_off_and_can_rerun(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A second SIGINT/SIGTERM cancels the drain: say what is cut off."""
    started, gate = asyncio.Event(), asyncio.Event()

    @aiohttp_jobs.atomic
    async def write(request: web.Request) -> web.Response:
        await aiohttp_jobs.spawn(request, gate.wait(), "mail")
        started.set()
        await gate.wait()
        return web.Response(text="written")

    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=5)
    app.router.add_post("/write", write)
    runner, port = await serve(app)
    scheduler = app[SCHEDULER_KEY]
    reader, writer = await _post(port, "/write")
    await started.wait()
    first = asyncio.ensure_future(runner.shutdown())
    await _until(lambda: scheduler.draining, "the drain began")
    with caplog.at_level(logging.WARNING, logger="aiohttp_jobs.web"):
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
    messages = [record.getMessage() for record in caplog.records]
    assert any("shutdown interrupted: job 'mail' (id=" in m for m in messages)
    assert any(
        "shutdown interrupted: atomic handler for POST /write" in m for m in messages
    )
    assert not scheduler.closed
    # The next shutdown drains again, and this time lets the work finish.
    second = asyncio.ensure_future(runner.cleanup())
    await asyncio.sleep(0)
    gate.set()
    data = await _response(reader, writer)
    await second
    assert data.endswith(b"written")
    assert scheduler.closed
    assert [job.state for job in scheduler.history.query()] == [JobState.SUCCEEDED]


# -- what work accepted before the shutdown may still do during the drain --------------


async def _drain_begins(
    runner: web.AppRunner, scheduler: Scheduler
) -> asyncio.Future[None]:
    cleanup = asyncio.ensure_future(runner.cleanup())
    await _until(lambda: scheduler.draining, "the drain began")
    return cleanup


@pytest.mark.parametrize("reject_when_full", [False, True])
async def test_atomic_handler_spawns_during_the_drain_and_the_job_runs(
    serve: Any, reject_when_full: bool
) -> None:
    """The pay example: charge, then spawn the receipt. A shutdown that begins
    while the card is being charged still sends the receipt (it used to refuse
    the spawn: card charged, receipt lost, client answered 500)."""
    charging, charged = asyncio.Event(), asyncio.Event()
    effects: list[str] = []

    async def send_receipt(order: str) -> None:
        await asyncio.sleep(0)
        effects.append(f"receipt {order}")

    @aiohttp_jobs.atomic
    async def pay(request: web.Request) -> web.Response:
        charging.set()
        await charged.wait()
        effects.append("charged 1")
        await aiohttp_jobs.spawn(
            request,
            send_receipt("1"),
            "send-receipt",
            reject_when_full=reject_when_full,
        )
        return web.Response(status=201, text="paid")

    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=5)
    app.router.add_post("/pay", pay)
    runner, port = await serve(app, handler_cancellation=True)
    scheduler = app[SCHEDULER_KEY]
    reader, writer = await _post(port, "/pay")
    await charging.wait()
    cleanup = await _drain_begins(runner, scheduler)
    charged.set()
    data = await _response(reader, writer)
    await cleanup
    assert data.startswith(b"HTTP/1.1 201"), data
    assert effects == ["charged 1", "receipt 1"]
    [receipt] = scheduler.history.query()
    assert (receipt.name, receipt.state) == ("send-receipt", JobState.SUCCEEDED)


async def test_jobs_spawned_during_the_drain_may_spawn_their_own(serve: Any) -> None:
    gate = asyncio.Event()
    effects: list[str] = []

    async def notify() -> None:
        effects.append("notified")

    async def receipt() -> None:
        effects.append("receipt")
        await app[SCHEDULER_KEY].spawn(notify(), "notify")

    @aiohttp_jobs.atomic
    async def pay(request: web.Request) -> web.Response:
        await gate.wait()
        await aiohttp_jobs.spawn(request, receipt(), "receipt")
        return web.Response(status=201)

    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=5)
    app.router.add_post("/pay", pay)
    runner, port = await serve(app)
    scheduler = app[SCHEDULER_KEY]
    reader, writer = await _post(port, "/pay")
    await _until(lambda: len(app[STATE_KEY].protected) == 1, "the handler started")
    cleanup = await _drain_begins(runner, scheduler)
    gate.set()
    data = await _response(reader, writer)
    await cleanup
    assert data.startswith(b"HTTP/1.1 201"), data
    assert effects == ["receipt", "notified"]


async def test_shielded_work_spawns_during_the_drain(serve: Any) -> None:
    started, gate = asyncio.Event(), asyncio.Event()
    effects: list[str] = []

    async def mail() -> None:
        effects.append("mailed")

    async def audit(request: web.Request) -> None:
        started.set()
        await gate.wait()
        effects.append("audited")
        await aiohttp_jobs.spawn(request, mail(), "mail")

    async def handler(request: web.Request) -> web.Response:
        aiohttp_jobs.shield(request, audit(request))
        return web.Response(status=202)

    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=5)
    app.router.add_post("/", handler)
    runner, port = await serve(app)
    scheduler = app[SCHEDULER_KEY]
    assert (await _response(*await _post(port, "/"))).startswith(b"HTTP/1.1 202")
    await started.wait()
    cleanup = await _drain_begins(runner, scheduler)
    gate.set()
    await cleanup
    assert effects == ["audited", "mailed"]
    assert [job.name for job in scheduler.history.query()] == ["mail"]


async def test_a_plain_handler_cannot_spawn_during_the_drain(serve: Any) -> None:
    """Only work accepted as atomic or shielded is exempt from the drain."""
    started, gate, hold = asyncio.Event(), asyncio.Event(), asyncio.Event()
    outcome: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        started.set()
        await gate.wait()
        coro = asyncio.sleep(0)
        try:
            await aiohttp_jobs.spawn(request, coro, "late")
        except SchedulerClosedError as exc:
            coro.close()  # a refused coroutine is left to its owner, as with aiojobs
            outcome.append(str(exc))
        return web.Response(text="refused")

    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=5)
    app.router.add_post("/", handler)
    runner, port = await serve(app)
    scheduler = app[SCHEDULER_KEY]
    await scheduler.spawn(hold.wait(), "holds-the-drain-open")
    reader, writer = await _post(port, "/")
    await started.wait()
    cleanup = await _drain_begins(runner, scheduler)
    gate.set()
    data = await _response(reader, writer)
    assert not scheduler.closed  # still draining when the handler spawned
    hold.set()
    await cleanup
    assert data.endswith(b"refused")
    assert len(outcome) == 1 and "draining" in outcome[0], outcome
    assert [job.name for job in scheduler.history.query()] == ["holds-the-drain-open"]


async def test_what_the_drain_admits_is_still_bounded_by_wait_timeout(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    gate = asyncio.Event()
    never = asyncio.Event()

    @aiohttp_jobs.atomic
    async def handler(request: web.Request) -> web.Response:
        await gate.wait()
        await aiohttp_jobs.spawn(request, never.wait(), "endless")
        return web.Response(status=201)

    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=0.5, close_timeout=0.05)
    app.router.add_post("/", handler)
    runner, port = await serve(app)
    scheduler = app[SCHEDULER_KEY]
    reader, writer = await _post(port, "/")
    await _until(lambda: len(app[STATE_KEY].protected) == 1, "the handler started")
    with caplog.at_level(logging.WARNING, logger="aiohttp_jobs.web"):
        cleanup = await _drain_begins(runner, scheduler)
        gate.set()
        data = await _response(reader, writer)
        await cleanup
    assert data.startswith(b"HTTP/1.1 201")
    [job] = scheduler.history.query()
    assert job.state is JobState.CANCELLED
    assert any(
        "job 'endless'" in record.getMessage()
        and "did not finish within wait_timeout" in record.getMessage()
        for record in caplog.records
    )


async def test_a_task_run_asked_for_during_the_drain_is_refused_with_503(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A run that the stopping task runtime would never execute is refused
    loudly (503 and a warning) instead of being accepted, answered 201, and
    dropped."""
    tasks = Tasks()
    gate = asyncio.Event()

    @tasks.task(keyword="paid")
    async def bookkeeping(ctx: Context) -> None:  # pragma: no cover - refused
        raise AssertionError("must not be accepted")

    @aiohttp_jobs.atomic
    async def pay(request: web.Request) -> web.Response:
        await gate.wait()
        runs = await aiohttp_jobs.get_tasks(request).fire("paid", order=1)
        return web.json_response({"runs": runs}, status=201)

    app = web.Application()
    aiohttp_jobs.setup(app, tasks=tasks, wait_timeout=5)
    app.router.add_post("/pay", pay)
    runner, port = await serve(app)
    reader, writer = await _post(port, "/pay")
    await _until(lambda: len(app[STATE_KEY].protected) == 1, "the handler started")
    with caplog.at_level(logging.WARNING, logger="aiohttp_jobs.web"):
        cleanup = asyncio.ensure_future(runner.cleanup())
        # Once the scheduler drains, the task runtime has stopped.
        await _until(lambda: app[SCHEDULER_KEY].draining, "the drain began")
        gate.set()
        data = await _response(reader, writer)
        await cleanup
    assert data.startswith(b"HTTP/1.1 503"), data
    assert b"Retry-After: 1" in data
    assert b"shutting down" in data
    assert any(
        "atomic handler for POST /pay answered 503" in record.getMessage()
        for record in caplog.records
    )


async def test_a_raising_exception_handler_keeps_the_per_job_shutdown_report(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken exception_handler used to turn the drain's report into one
    'error during graceful shutdown': each job is still reported."""

    def broken(scheduler: Scheduler, context: dict[str, Any]) -> None:
        raise RuntimeError("the handler itself is broken")

    async def stubborn() -> None:
        while True:  # ignores cancellation: outlives close_timeout
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await asyncio.sleep(0.2)
                return

    async def slow() -> None:
        await asyncio.sleep(3600)

    app = web.Application()
    aiohttp_jobs.setup(
        app, wait_timeout=0.05, close_timeout=0.05, exception_handler=broken
    )
    runner, _ = await serve(app)
    scheduler = app[SCHEDULER_KEY]
    stuck = await scheduler.spawn(stubborn(), "stubborn")
    cut = await scheduler.spawn(slow(), "slow")
    with caplog.at_level(logging.WARNING, logger="aiohttp_jobs.web"):
        await runner.cleanup()
    messages = [record.getMessage() for record in caplog.records]
    assert not any("error during graceful shutdown" in m for m in messages), messages
    assert any(
        f"job 'slow' (id={cut.id}) cancelled after running" in m for m in messages
    ), messages
    assert any(
        f"job 'stubborn' (id={stuck.id}) did not stop within close_timeout" in m
        for m in messages
    ), messages
    assert scheduler.closed
    await _until(lambda: stuck.done, "the stubborn job ended")


# Every kind of work in flight when a real SIGTERM arrives. Each handler
# announces itself, then waits until the scheduler drains (so the task runtime
# has stopped), then does what it came for. At exit the server prints what
# happened, as JSON.
_DRAIN_APP = textwrap.dedent(
    """
    import asyncio, json, socket
    from aiohttp import web
    import aiohttp_jobs

    effects = {key: [] for key in (
        "charged", "receipts", "notified", "audited", "audit_mails", "task_runs"
    )}
    tasks = aiohttp_jobs.Tasks()

    @tasks.task(keyword="signed-up")
    async def welcome(ctx):
        effects["task_runs"].append(ctx.params["user"])

    async def draining(request):
        print("in flight", request.path, flush=True)
        scheduler = aiohttp_jobs.get_scheduler(request)
        while not scheduler.draining:
            await asyncio.sleep(0.001)

    async def notify(n):
        effects["notified"].append(n)

    async def send_receipt(scheduler, n):
        await asyncio.sleep(0.01)
        effects["receipts"].append(n)
        await scheduler.spawn(notify(n), "notify")  # a job's own sub-job

    @aiohttp_jobs.atomic
    async def pay(request):
        n = int(request.query["n"])
        await draining(request)
        effects["charged"].append(n)
        scheduler = aiohttp_jobs.get_scheduler(request)
        await aiohttp_jobs.spawn(request, send_receipt(scheduler, n), "receipt")
        return web.json_response({"paid": n}, status=201)

    async def audit_mail(n):
        effects["audit_mails"].append(n)

    async def write_audit(request, n):
        await draining(request)
        effects["audited"].append(n)
        await aiohttp_jobs.spawn(request, audit_mail(n), "audit-mail")

    async def audit(request):
        n = int(request.query["n"])
        await aiohttp_jobs.shield(request, write_audit(request, n))
        return web.Response(text="audited")

    @aiohttp_jobs.atomic
    async def signup(request):
        await draining(request)
        runs = await aiohttp_jobs.get_tasks(request).fire(
            "signed-up", user=request.query["user"]
        )
        return web.json_response({"runs": runs}, status=201)

    app = web.Application()
    aiohttp_jobs.setup(app, tasks=tasks, wait_timeout=10, close_timeout=1)
    app.router.add_post("/pay", pay)
    app.router.add_post("/audit", audit)
    app.router.add_post("/signup", signup)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print("port", sock.getsockname()[1], flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None,
                handler_cancellation=True)
    print(json.dumps({key: sorted(value) for key, value in effects.items()}),
          flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_sigterm_drain_finishes_accepted_work_and_refuses_task_runs(
    tmp_path: Path,
) -> None:
    """A real server process gets a SIGTERM with payments (atomic, spawning
    a receipt that spawns a notification), audits (shielded, spawning a
    mail) and sign-ups (atomic, firing a task) in flight over real sockets.
    Every payment and audit completes with all its jobs; every task run is
    refused with a 503 (never answered 201 and dropped); the process exits by
    itself."""
    script = tmp_path / "app.py"
    script.write_text(_DRAIN_APP)
    each = range(5)
    async with python_process(str(script)) as child:
        proc, line = child.proc, child.line
        assert proc.stderr is not None
        port = int((await line()).split()[1])
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0)
        ) as session:

            async def post(path: str) -> tuple[int, str, str | None]:
                async with session.post(base + path) as resp:
                    return (
                        resp.status,
                        await resp.text(),
                        resp.headers.get("Retry-After"),
                    )

            requests = [
                *(post(f"/pay?n={n}") for n in each),
                *(post(f"/audit?n={n}") for n in each),
                *(post(f"/signup?user=u{n}") for n in each),
            ]
            answers = [asyncio.ensure_future(request) for request in requests]
            started = sorted([await line() for _ in answers])
            assert started == sorted(
                ["in flight /pay"] * 5
                + ["in flight /audit"] * 5
                + ["in flight /signup"] * 5
            )
            proc.send_signal(signal.SIGTERM)
            done = await asyncio.wait_for(asyncio.gather(*answers), 20)
        pays, audits, signups = done[:5], done[5:10], done[10:]
        assert [status for status, _, _ in pays] == [201] * 5
        assert [(status, text) for status, text, _ in audits] == [(200, "audited")] * 5
        for status, text, retry_after in signups:
            assert (status, retry_after) == (503, "1")
            assert "shutting down" in text
        effects = json.loads(await line())
        assert effects == {
            "charged": list(each),
            "receipts": list(each),
            "notified": list(each),
            "audited": list(each),
            "audit_mails": list(each),
            "task_runs": [],
        }
        assert await asyncio.wait_for(proc.wait(), 20) == 0  # exited by itself
        log = (await proc.stderr.read()).decode()
        assert log.count("atomic handler for POST /signup answered 503") == 5, log
        assert "Traceback" not in log and "shutdown: job" not in log, log
