"""What the browser journeys share: Debian's Chromium driven by Playwright, a
screenshot of every page a journey visits, the application a journey opens,
the steps every journey takes (follow a link, act and see the outcome), and a
small prefix-stripping reverse proxy.

Playwright never downloads a browser here: it drives the system's
``/usr/bin/chromium`` (Debian's ``chromium`` package) through
``executable_path``. Without it the journeys are skipped on a workstation and
fail when ``CI`` is set. ``AIOHTTP_JOBS_CHROMIUM`` points at another binary.

The fixtures (``browser``, ``shots``, ``serve_dashboard``, ``session_serve``)
reach every test of this folder through its ``conftest.py``; a test that asks
for none starts no Chromium. A test that uses them runs on the session's event
loop, the one the shared browser lives in::

    pytestmark = pytest.mark.asyncio(loop_scope="session")

A journey never acts on a page before the page's script is live (its stream
connected): :meth:`Site.visit`, :func:`follow`, :func:`go_to` and :func:`act`
wait for that, and for the page an action leads to, instead of finding the
page it left.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    async_playwright,
    expect,
)

import aiohttp_jobs
import tests.conftest
from aiohttp_jobs import Context, Tasks, dashboard
from tests.conftest import Serve

CHROMIUM = Path(os.environ.get("AIOHTTP_JOBS_CHROMIUM", "/usr/bin/chromium"))

#: Headless, no sandbox (containers), and nothing that phones home or
#: updates itself while a test runs.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: Where the journeys leave their screenshots (ignored by git), one folder per
#: test; ``AIOHTTP_JOBS_SCREENSHOTS`` moves it.
SCREENSHOTS = Path(
    os.environ.get(
        "AIOHTTP_JOBS_SCREENSHOTS", Path(__file__).resolve().parent / "screenshots"
    )
)

#: Each assertion (and each navigation) waits this long (ms) before failing: a
#: loaded CI machine with two cores shared by several test workers is slow to
#: paint.
EXPECT_TIMEOUT = 15_000
expect.set_options(timeout=EXPECT_TIMEOUT)


def chromium() -> Path:
    """The Chromium binary; skips the test without one (fails with CI set)."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = (
        f"no Chromium at {CHROMIUM}: install Debian's chromium package "
        "(apt-get install -y chromium) or set AIOHTTP_JOBS_CHROMIUM"
    )
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium_browser() -> AsyncIterator[Browser]:
    """One headless Chromium per test process, started with a fresh,
    temporary profile (user-data-dir) that Playwright removes at the end."""
    executable = chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(FLAGS)
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser(chromium_browser: Browser) -> AsyncIterator[BrowserContext]:
    """A browser context of this test's own (no cookies, storage or cache from
    another test), in the shared Chromium."""
    context = await chromium_browser.new_context(
        viewport={"width": 1280, "height": 800},
        locale="en-GB",
        timezone_id="Europe/Paris",
    )
    context.set_default_timeout(EXPECT_TIMEOUT)
    try:
        yield context
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def session_serve() -> AsyncIterator[Serve]:
    """``tests/conftest.py``'s ``serve`` (an app on a free port of 127.0.0.1),
    on the session's event loop, where the shared browser lives."""
    # Its own function (a fixture cannot be called; the function it wraps can).
    serving: AsyncIterator[Serve] = inspect.unwrap(tests.conftest.serve)()
    async for serve_app in serving:
        yield serve_app


class Screenshots:
    """Full-page screenshots of a journey, numbered in the order taken."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken: list[Path] = []

    async def take(self, page: Page, label: str) -> Path:
        """Save *page* as ``NN-label.png`` and return the path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        path = self.folder / f"{len(self.taken) + 1:02d}-{slug}.png"
        await page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Screenshots:
    """Where this test saves its screenshots (the folder is emptied first)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    folder = SCREENSHOTS / name
    if folder.is_dir():
        for old in folder.glob("*.png"):
            old.unlink()
    print(f"screenshots: {folder}")  # noqa: T201  (shown when a journey fails)
    return Screenshots(folder)


# -- the application the journeys open ------------------------------------------


def journey_tasks() -> Tasks:
    """A cron task and a keyword-fired one, for the tasks page."""
    tasks = Tasks()

    @tasks.task(name="nightly-report", schedule="0 3 * * *", timezone="Europe/Paris")
    async def nightly_report(ctx: Context) -> str:
        return "report sent"

    @tasks.task(keyword="order-paid")
    async def send_receipt(ctx: Context) -> None:
        return None

    return tasks


def dashboard_app(
    *,
    authorize: dashboard.Authorize | None = None,
    tasks: Tasks | None = None,
    **options: Any,
) -> web.Application:
    """An application with a scheduler, tasks (*tasks*, or
    :func:`journey_tasks`) and the dashboard at /jobs."""
    app = web.Application()
    aiohttp_jobs.setup(
        app,
        tasks=journey_tasks() if tasks is None else tasks,
        wait_timeout=0.5,
        close_timeout=0.5,
    )
    dashboard.setup(app, prefix="/jobs", authorize=authorize, title="Shop", **options)
    return app


async def started(app: web.Application, serve: Serve) -> str:
    """Serve *app*; its base URL (``http://127.0.0.1:PORT``)."""
    _, port = await serve(app, shutdown_timeout=1)
    return f"http://127.0.0.1:{port}"


def scheduler_of(app: web.Application) -> aiohttp_jobs.Scheduler:
    scheduler = aiohttp_jobs.get_scheduler_from_app(app)
    assert scheduler is not None
    return scheduler


class Site:
    """A journey's application, served on a free port of 127.0.0.1, and the
    journey's browser (context) to visit it with."""

    def __init__(
        self, app: web.Application, base: str, browser: BrowserContext
    ) -> None:
        self.app = app
        #: ``http://127.0.0.1:PORT``
        self.base = base
        self.browser = browser

    @property
    def scheduler(self) -> aiohttp_jobs.Scheduler:
        return scheduler_of(self.app)

    def url(self, path: str) -> str:
        return self.base + path

    async def visit(self, path: str, page: Page | None = None) -> Page:
        """Open *path* (in a new tab, or in *page*); the page, answered with a
        success and its script live."""
        if page is None:
            page = await self.browser.new_page()
        response = await page.goto(self.url(path))
        assert response is not None and response.ok, (path, response)
        await until_live(page)
        return page


#: ``await serve_dashboard(app=None, **options) -> Site``
ServeDashboard = Callable[..., Awaitable[Site]]


@pytest.fixture
def serve_dashboard(session_serve: Serve, browser: BrowserContext) -> ServeDashboard:
    """``await serve_dashboard(**options)``: :func:`dashboard_app` with
    *options* (or the application given) served, as a :class:`Site`."""

    async def start(app: web.Application | None = None, **options: Any) -> Site:
        if app is None:
            app = dashboard_app(**options)
        return Site(app, await started(app, session_serve), browser)

    return start


# -- the steps of a journey ------------------------------------------------------

#: A marker the journeys set in the page: still there later means no reload.
NO_RELOAD = "window.__journeyMarker = 42"
STILL_LOADED = "window.__journeyMarker === 42"


def tid(name: str) -> str:
    """The selector of the element with ``data-testid=name``."""
    return f"[data-testid={name}]"


def job_row(page: Page, job_id: str) -> Locator:
    """The row of the job *job_id* in a jobs table."""
    return page.locator(f'{tid("job-row")}[data-job-id="{job_id}"]')


def task_row(page: Page, key: str) -> Locator:
    """The section of the task (or dynamic instance) *key* on the tasks page."""
    return page.locator(f'{tid("task-row")}[data-task-key="{key}"]')


async def until_live(page: Page) -> None:
    """Wait for the page's live stream to be connected (its script is running:
    keys, confirmations and live updates work from then on)."""
    await expect(page.locator(tid("live-status"))).to_have_attribute(
        "data-state", "live"
    )


@asynccontextmanager
async def next_page(page: Page) -> AsyncIterator[None]:
    """``async with next_page(page): <click, key press>``: then wait for the page
    that leads to, loaded and live (never the page it left, still showing)."""
    async with page.expect_navigation():
        yield
    await until_live(page)


async def follow(page: Page, link: Locator) -> None:
    """Click *link* (or a form's button) and wait for the page it leads to."""
    async with next_page(page):
        await link.click()


async def go_to(page: Page, name: str) -> None:
    """Follow the navigation bar's link *name* (``"Jobs"``, ``"Tasks"``...)."""
    bar = page.get_by_role("navigation", name="Dashboard")
    await follow(page, bar.get_by_role("link", name=name, exact=True))


async def act(page: Page, button: Locator, outcome: str = "ok") -> None:
    """Press an action form's *button* (answer its confirmation with
    :func:`confirming` first) and wait for the page the action leads back to,
    which tells the action's *outcome*."""
    await follow(page, button)
    await expect(page.locator(tid("action-result"))).to_have_attribute(
        "data-outcome", outcome
    )


async def filter_jobs(page: Page, name: str) -> None:
    """On the jobs page, show only the jobs called *name* (the filter form)."""
    await page.locator(tid("filter-name")).fill(name)
    await follow(page, page.locator(tid("filter-submit")))
    await expect(page).to_have_url(re.compile(rf"[?&]name={re.escape(name)}(&|$)"))


async def confirming(
    page: Page, *, answer: bool = True, once: bool = False
) -> list[str]:
    """Answer every confirmation the page asks for (or the next one, *once*):
    OK, or Cancel if not *answer*. The questions asked, as they are."""
    asked: list[str] = []

    async def reply(dialog: Any) -> None:
        asked.append(dialog.message)
        await (dialog.accept() if answer else dialog.dismiss())

    (page.once if once else page.on)("dialog", reply)
    return asked


# -- a reverse proxy that strips a path prefix ---------------------------------

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
    }
)


def stripping_proxy(upstream: str, prefix: str) -> web.Application:
    """An application that answers under *prefix* and forwards every request
    to *upstream* (``http://127.0.0.1:PORT``) with the prefix removed, as nginx's
    ``location /ops/ { proxy_pass http://app/; }`` does, adding the usual
    ``X-Forwarded-*`` headers. Responses (event streams too) are streamed back."""
    prefix = prefix.rstrip("/")
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            app[session_key] = session
            yield

    async def forward(request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        target = f"{upstream}/{tail}"
        if request.query_string:
            target += f"?{request.query_string}"
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in HOP_BY_HOP
        }
        peer = request.remote or ""
        headers["X-Forwarded-For"] = peer
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Forwarded-Prefix"] = prefix
        headers["X-Real-IP"] = peer
        body = await request.read()
        async with request.app[session_key].request(
            request.method,
            target,
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as upstream_response:
            response = web.StreamResponse(
                status=upstream_response.status, reason=upstream_response.reason
            )
            for name, value in upstream_response.headers.items():
                if name.lower() in HOP_BY_HOP:
                    continue
                if name.lower() == "location" and value.startswith("/"):
                    value = prefix + value  # as proxy_redirect does
                response.headers.add(name, value)
            await response.prepare(request)
            async for chunk in upstream_response.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", prefix + "/{tail:.*}", forward)
    return app
