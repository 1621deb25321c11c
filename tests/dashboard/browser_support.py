"""What the browser journeys share: Debian's Chromium driven by Playwright, a
screenshot of every page a journey visits, and a small prefix-stripping reverse
proxy.

Playwright never downloads a browser here: it drives the system's
``/usr/bin/chromium`` (Debian's ``chromium`` package) through
``executable_path``. Without it the journeys are skipped on a workstation and
fail when ``CI`` is set. ``AIOHTTP_JOBS_CHROMIUM`` points at another binary.

Import the fixtures into a test module::

    from tests.dashboard.browser_support import browser, shots  # noqa: F401
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import BrowserContext, Page, async_playwright, expect

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

#: Each assertion waits this long (ms) before failing: a loaded CI machine
#: with two cores shared by several test workers is slow to paint.
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


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """A headless Chromium with a fresh profile (user-data-dir) of its own."""
    executable = chromium()
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=executable,
            headless=True,
            args=list(FLAGS),
            viewport={"width": 1280, "height": 800},
            locale="en-GB",
            timezone_id="Europe/Paris",
        )
        context.set_default_timeout(EXPECT_TIMEOUT)
        try:
            yield context
        finally:
            await context.close()


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
