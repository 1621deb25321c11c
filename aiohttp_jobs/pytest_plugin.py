"""pytest fixtures for testing code that uses aiohttp-jobs.

pytest loads this plugin by itself wherever aiohttp-jobs is installed (it is
registered under the ``pytest11`` entry point ``aiohttp_jobs``; ``-p
no:aiohttp_jobs`` turns it off). Its fixtures all start with ``jobs_`` and do
nothing until a test asks for them:

``jobs_clock``
    A :class:`~aiohttp_jobs.testing.FakeClock` at 2024-01-01 00:00 UTC, or
    where ``@pytest.mark.jobs_clock(start)`` says (an aware datetime or a POSIX
    timestamp).
``jobs_scheduler``
    A :class:`~aiohttp_jobs.Scheduler` on ``jobs_clock``, closed after the test.
    ``@pytest.mark.jobs_scheduler(limit=2, ...)`` passes keyword arguments to
    its constructor.
``jobs_task_runtime``
    ``await jobs_task_runtime(tasks)`` starts the
    :class:`~aiohttp_jobs.TaskRuntime` of a :class:`~aiohttp_jobs.Tasks`
    registry on ``jobs_scheduler`` and ``jobs_clock``, without a web
    application; it stops after the test.
``jobs_client``
    ``await jobs_client(app, **options)`` calls
    ``aiohttp_jobs.setup(app, clock=jobs_clock, **options)``, starts the
    application on a local port and returns an
    :class:`aiohttp.test_utils.TestClient` for it; the application shuts down
    (draining its scheduler) after the test. ``clock=`` in *options* replaces
    ``jobs_clock``.

The asynchronous fixtures are pytest-asyncio fixtures, so they work in its
strict and auto modes alike. This module imports only pytest and
pytest-asyncio; the fixtures import aiohttp-jobs' modules, and aiohttp, when a
test first uses them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from aiohttp import web
    from aiohttp.test_utils import TestClient

    from . import Scheduler, TaskRuntime, Tasks
    from .testing import FakeClock

    async_fixture = pytest.fixture
else:
    try:
        from pytest_asyncio import fixture as async_fixture
    except ImportError:  # pragma: no cover - without pytest-asyncio
        async_fixture = pytest.fixture

__all__ = [
    "DEFAULT_START",
    "JobsClient",
    "JobsTaskRuntime",
    "jobs_client",
    "jobs_clock",
    "jobs_scheduler",
    "jobs_task_runtime",
]

#: Where ``jobs_clock`` starts unless ``@pytest.mark.jobs_clock(start)`` says.
DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)


class JobsClient(Protocol):
    """The type of the ``jobs_client`` fixture, for annotating tests."""

    async def __call__(
        self, app: web.Application, **options: Any
    ) -> TestClient[web.Request, web.Application]:
        """Set *app* up on ``jobs_clock`` with *options*, serve it, return a
        client for it."""


class JobsTaskRuntime(Protocol):
    """The type of the ``jobs_task_runtime`` fixture, for annotating tests."""

    async def __call__(self, tasks: Tasks, *, app: object = None) -> TaskRuntime:
        """Start the runtime of *tasks*; ``ctx.app`` is *app* in its runs."""


def pytest_configure(config: pytest.Config) -> None:
    """Register the plugin's markers (so ``--strict-markers`` accepts them)."""
    config.addinivalue_line(
        "markers",
        "jobs_clock(start): where the jobs_clock fixture starts "
        "(an aware datetime or a POSIX timestamp)",
    )
    config.addinivalue_line(
        "markers",
        "jobs_scheduler(**options): keyword arguments for the Scheduler "
        "of the jobs_scheduler fixture",
    )


@pytest.fixture
def jobs_clock(request: pytest.FixtureRequest) -> FakeClock:
    """A :class:`~aiohttp_jobs.testing.FakeClock`: time moves only when the test
    calls ``await jobs_clock.advance(seconds)`` (or ``set()``, ``jump()``)."""
    from .testing import FakeClock

    marker = request.node.get_closest_marker("jobs_clock")
    if marker is None:
        return FakeClock(DEFAULT_START)
    return FakeClock(*marker.args, **marker.kwargs)


@async_fixture
async def jobs_scheduler(
    request: pytest.FixtureRequest, jobs_clock: FakeClock
) -> AsyncIterator[Scheduler]:
    """A :class:`~aiohttp_jobs.Scheduler` whose delayed spawns follow
    ``jobs_clock``; closed after the test (jobs still running are cancelled)."""
    from . import Scheduler

    marker = request.node.get_closest_marker("jobs_scheduler")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    scheduler = Scheduler(clock=jobs_clock, **options)
    try:
        yield scheduler
    finally:
        await scheduler.close()


@async_fixture
async def jobs_task_runtime(
    jobs_scheduler: Scheduler, jobs_clock: FakeClock
) -> AsyncIterator[JobsTaskRuntime]:
    """``await jobs_task_runtime(tasks)``: the running
    :class:`~aiohttp_jobs.TaskRuntime` of *tasks* on ``jobs_scheduler`` and
    ``jobs_clock``; stopped after the test (runs in flight are waited for)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(tasks: Tasks, *, app: object = None) -> TaskRuntime:
            return await stack.enter_async_context(
                tasks.runtime(app=app, scheduler=jobs_scheduler, clock=jobs_clock)
            )

        yield start


@async_fixture
async def jobs_client(jobs_clock: FakeClock) -> AsyncIterator[JobsClient]:
    """``await jobs_client(app, **options)``: set *app* up with
    ``aiohttp_jobs.setup(app, clock=jobs_clock, **options)``, serve it on a
    local port and return a test client; after the test, the client closes and
    the application shuts down as it would in production (a graceful drain)."""
    from aiohttp.test_utils import TestClient, TestServer

    from .web import setup

    async with contextlib.AsyncExitStack() as stack:

        async def start(
            app: web.Application, **options: Any
        ) -> TestClient[web.Request, web.Application]:
            options.setdefault("clock", jobs_clock)
            setup(app, **options)
            client = TestClient(TestServer(app))
            await client.start_server()
            stack.push_async_callback(client.close)
            return client

        yield start
