"""Logging conventions: one logger tree under ``aiohttp_jobs``, failures of jobs
nobody awaited logged there (not on asyncio's logger), structured job and run
fields on the records, and INFO lines when a graceful drain begins and ends."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import pytest
from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import SCHEDULER_KEY, Context, Scheduler, Tasks
from aiohttp_jobs._core.logs import FIELDS, LOGGER_NAMES
from aiohttp_jobs.testing import FakeClock
from tests.helpers import ROOT, blocked, failing, settle


class _JsonFormatter(logging.Formatter):
    """What a JSON log formatter does: the message plus the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {key: getattr(record, key) for key in FIELDS if hasattr(record, key)}
        return json.dumps(
            {"logger": record.name, "message": record.getMessage(), **fields}
        )


async def test_an_unawaited_failure_is_logged_on_the_jobs_logger_with_its_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Scheduler() as scheduler:
        job = await scheduler.spawn(failing(ValueError("boom")), "send-mail")
        await settle()
    records = [r for r in caplog.records if r.levelno >= logging.ERROR]
    (record,) = records
    assert record.name == "aiohttp_jobs.jobs"
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith(
        "Job processing failed\njob: <Job 'send-mail'"
    )
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)
    assert json.loads(_JsonFormatter().format(record)) == {
        "logger": "aiohttp_jobs.jobs",
        "message": record.getMessage(),
        "job_id": job.id,
        "job_name": "send-mail",
    }
    assert not [r for r in caplog.records if r.name == "asyncio"]


async def test_a_custom_exception_handler_still_gets_the_context(
    caplog: pytest.LogCaptureFixture,
) -> None:
    contexts: list[dict[str, Any]] = []
    async with Scheduler(exception_handler=lambda s, c: contexts.append(c)) as sched:
        job = await sched.spawn(failing(KeyError("k")), "x")
        await settle()
    assert [(c["message"], c["job"]) for c in contexts] == [
        ("Job processing failed", job)
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_loop_exception_handler_set_by_the_application_still_gets_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        async with Scheduler() as scheduler:
            await scheduler.spawn(failing(RuntimeError("x")), "y")
            await settle()
    finally:
        loop.set_exception_handler(None)
    assert [c["message"] for c in seen] == ["Job processing failed"]
    assert not [r for r in caplog.records if r.name == "aiohttp_jobs.jobs"]


async def test_a_start_timeout_names_the_job(caplog: pytest.LogCaptureFixture) -> None:
    gate = asyncio.Event()
    async with Scheduler(limit=1, start_timeout_warning=0.001) as scheduler:
        await scheduler.spawn(blocked(gate), "first")
        waiting = await scheduler.spawn(blocked(gate), "second")
        with caplog.at_level(logging.WARNING, logger="aiohttp_jobs"):
            for _ in range(5000):  # seconds at most, on a busy machine
                if caplog.records:
                    break
                await asyncio.sleep(0.002)
        gate.set()
    (record,) = caplog.records
    assert record.name == "aiohttp_jobs.jobs"
    assert (record.job_id, record.job_name) == (waiting.id, "second")  # type: ignore[attr-defined]


async def test_task_run_records_carry_the_run_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = Tasks()
    log = logging.getLogger("aiohttp_jobs.tasks")

    @tasks.task(interval=60, retries=1, retry_backoff=1)
    async def sync(ctx: Context) -> None:
        log.info("syncing")  # the application's own record, on a package logger
        raise RuntimeError("upstream down")

    clock = FakeClock(0)
    caplog.set_level(logging.INFO, logger="aiohttp_jobs")
    async with (
        Scheduler(limit=None) as scheduler,
        tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime,
    ):
        await clock.advance(60)
        await runtime.wait_idle()
    ours = [r for r in caplog.records if r.name == "aiohttp_jobs.tasks"]
    syncing = [r for r in ours if r.getMessage() == "syncing"]
    assert syncing
    first = syncing[0]
    assert first.task == "sync"  # type: ignore[attr-defined]
    assert first.run_id.startswith("sync@")  # type: ignore[attr-defined]
    assert first.attempt == 0  # type: ignore[attr-defined]
    assert first.job_name == "sync" and first.job_id  # type: ignore[attr-defined]
    retrying = next(r for r in ours if "retrying" in r.getMessage())
    assert retrying.run_id == first.run_id  # type: ignore[attr-defined]
    assert retrying.job_id == first.job_id  # type: ignore[attr-defined]


async def test_drain_begins_and_ends_with_an_info_line(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    gate = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await aiohttp_jobs.spawn(request, gate.wait(), "finishes")
        await aiohttp_jobs.spawn(request, asyncio.Event().wait(), "never")
        return web.Response()

    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=0.2, close_timeout=0.05)
    app.router.add_post("/", handler)
    runner, port = await serve(app)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    await reader.readline()
    writer.close()
    await writer.wait_closed()
    scheduler = app[SCHEDULER_KEY]
    caplog.set_level(logging.INFO, logger="aiohttp_jobs")
    cleanup = asyncio.ensure_future(runner.cleanup())
    for _ in range(2000):
        if scheduler.draining:
            break
        await asyncio.sleep(0.001)
    gate.set()
    await cleanup
    lines = [
        (r.name, r.levelno, r.getMessage())
        for r in caplog.records
        if r.name == "aiohttp_jobs.web" and r.levelno == logging.INFO
    ]
    assert lines == [
        (
            "aiohttp_jobs.web",
            logging.INFO,
            "graceful shutdown: drain begins; waiting up to wait_timeout=0.2 s for "
            "2 running and 0 pending jobs, 0 task runs, 0 atomic or shielded "
            "requests",
        ),
        (
            "aiohttp_jobs.web",
            logging.INFO,
            lines[1][2],
        ),
    ]
    (cut,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert cut.job_name == "never" and cut.job_id  # type: ignore[attr-defined]
    assert re.fullmatch(
        r"graceful shutdown: drain ended after \d+\.\d+ s; 1 jobs finished, cut off "
        r"1 jobs and 0 atomic or shielded requests",
        lines[1][2],
    )


def test_every_logger_of_the_package_is_in_the_documented_tree() -> None:
    names = set()
    for path in (ROOT / "aiohttp_jobs").rglob("*.py"):
        names.update(re.findall(r'getLogger\("([^"]+)"\)', path.read_text()))
    assert names, "no loggers found"
    for name in names:
        assert name == "aiohttp_jobs" or name.startswith("aiohttp_jobs."), name
        assert name in LOGGER_NAMES or name.rsplit(".", 1)[0] in LOGGER_NAMES, name
    docs = (ROOT / "docs" / "observability.md").read_text()
    for name in LOGGER_NAMES:
        assert f"`{name}`" in docs, name
