"""The pytest plugin (aiohttp_jobs.pytest_plugin), run in pytest processes of
their own (pytester), where pytest loads it through its entry point as in a
user's project: the example of docs/testing.md passes in pytest-asyncio's strict
and auto modes, fixtures clean up, and loading the plugin costs nothing until a
fixture is used.

The runs are subprocesses rather than in-process pytester runs: those drop the
modules first imported during a run, so a package whose modules load when a
fixture is first used would see a second copy of its classes (and CPython's
zoneinfo cannot be imported twice in one process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
EXAMPLE = EXAMPLES / "testing_plugin.py"
STRICT = (
    *("-p", "no:cacheprovider", "--strict-markers", "-W", "error"),
    *("-o", "asyncio_default_fixture_loop_scope=function"),
)


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_docs_example_passes(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_app=EXAMPLE.read_text())
    result = pytester.runpytest_subprocess(*STRICT, "-o", f"asyncio_mode={mode}")
    result.assert_outcomes(passed=4)


def test_fixtures_are_closed_after_each_test(pytester: pytest.Pytester) -> None:
    """The scheduler, the task runtime and the served application of one test
    are closed before the next test starts."""
    pytester.makepyfile(
        test_close=textwrap.dedent(
            """
            import asyncio
            from datetime import UTC, datetime

            import pytest

            from aiohttp_jobs import Scheduler, Tasks
            from aiohttp_jobs.testing import FakeClock

            seen = {}
            tasks = Tasks()

            @tasks.task(interval=60)
            async def tick(ctx):
                pass

            @pytest.mark.asyncio
            @pytest.mark.jobs_clock(datetime(2030, 5, 1, tzinfo=UTC))
            @pytest.mark.jobs_scheduler(limit=3, pending_limit=5)
            async def test_first(jobs_scheduler, jobs_clock, jobs_task_runtime):
                assert isinstance(jobs_clock, FakeClock)
                assert jobs_clock.now() == datetime(2030, 5, 1, tzinfo=UTC)
                assert (jobs_scheduler.limit, jobs_scheduler.pending_limit) == (3, 5)
                runtime = await jobs_task_runtime(tasks)
                seen.update(scheduler=jobs_scheduler, runtime=runtime)
                seen["job"] = await jobs_scheduler.spawn(asyncio.sleep(3600), "nap")
                await jobs_clock.advance(120)
                assert len(jobs_scheduler.history.query(name="tick")) == 2

            def test_then(jobs_clock):
                assert seen["scheduler"].closed
                assert seen["runtime"].stopping
                assert seen["job"].state.value == "cancelled"
                assert jobs_clock.now() == datetime(2024, 1, 1, tzinfo=UTC)
            """
        )
    )
    pytester.makepyfile(
        test_client=textwrap.dedent(
            """
            import asyncio

            import pytest
            from aiohttp import web

            import aiohttp_jobs

            apps = []
            NEVER = web.AppKey("never", asyncio.Event)

            async def hello(request):
                await aiohttp_jobs.spawn(request, request.app[NEVER].wait(), "w")
                return web.Response(text="hi")

            @pytest.mark.asyncio
            async def test_serve(jobs_client):
                app = web.Application()
                app[NEVER] = asyncio.Event()  # the job outlives wait_timeout
                app.router.add_get("/", hello)
                client = await jobs_client(app, wait_timeout=0.01)
                assert await (await client.get("/")).text() == "hi"
                apps.append(app)

            def test_then():
                scheduler = apps[0][aiohttp_jobs.SCHEDULER_KEY]
                assert scheduler.closed
            """
        )
    )
    pytester.runpytest_subprocess(*STRICT).assert_outcomes(passed=4)


def test_the_plugin_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_clock(jobs_clock):\n    pass\n")
    result = pytester.runpytest_subprocess(*STRICT, "-p", "no:aiohttp_jobs")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'jobs_clock' not found*"])


# What a test session that never asks for a jobs_* fixture must not pay for:
# the web and template libraries, the optional backends, and the package's own
# modules (the engine, the web layer, the stores, the dashboard).
HEAVY_LIBRARIES = {
    "aiohttp",
    "aiohttp_jinja2",
    "jinja2",
    "croniter",
    "aiohttp_sse",
    "redis",
    "aiosqlite",
    "prometheus_client",
    "opentelemetry",
}
LIGHT_OWN_MODULES = {"aiohttp_jobs", "aiohttp_jobs.pytest_plugin"}

# Run in a fresh interpreter, where pytest and pytest-asyncio are loaded first
# (a pytest session has them anyway): what loading the plugin adds.
IMPORT_PLUGIN = """
import sys
import pytest, pytest_asyncio

before = set(sys.modules)
import aiohttp_jobs.pytest_plugin
print("\\n".join(sorted(set(sys.modules) - before)))
"""


def test_loading_the_plugin_imports_no_heavy_module() -> None:
    """pytest loads the plugin in every session where the package is
    installed, whether or not a test uses its fixtures: loading it (and the
    package's ``__init__``, which exports every public name lazily) imports
    none of the web, template or backend libraries and none of the package's
    own modules; the fixtures import them when first used."""
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_PLUGIN],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = out.stdout.split()
    heavy = [name for name in loaded if name.partition(".")[0] in HEAVY_LIBRARIES]
    own = [
        name
        for name in loaded
        if name.partition(".")[0] == "aiohttp_jobs" and name not in LIGHT_OWN_MODULES
    ]
    assert (sorted({n.partition(".")[0] for n in heavy}), own) == ([], [])
