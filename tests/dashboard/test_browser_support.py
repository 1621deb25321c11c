"""The journeys' own tools work: Chromium starts from the system binary with a
fresh profile, and the test proxy strips its prefix, adds the forwarding
headers and streams responses as they come."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import BrowserContext, expect

from tests.conftest import Serve
from tests.dashboard.browser_support import (
    CHROMIUM,
    FLAGS,
    Screenshots,
    stripping_proxy,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "path": request.path_qs,
            "method": request.method,
            "body": await request.text(),
            "headers": dict(request.headers),
        }
    )


async def _stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"data: first\n\n")
    await request.app[RELEASE].wait()
    await response.write(b"data: second\n\n")
    return response


RELEASE = web.AppKey("release", asyncio.Event)


def _upstream() -> web.Application:
    app = web.Application()
    app[RELEASE] = asyncio.Event()
    app.router.add_get("/stream", _stream)
    app.router.add_get("/redirect", _redirect)
    app.router.add_route("*", "/{tail:.*}", _echo)
    return app


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/jobs/")


async def _proxied(serve: Serve) -> tuple[web.Application, str]:
    """An echo application behind the proxy at /ops; (upstream, proxy URL)."""
    upstream = _upstream()
    _, port = await serve(upstream)
    _, proxy_port = await serve(
        stripping_proxy(f"http://127.0.0.1:{port}", "/ops"), shutdown_timeout=0.5
    )
    return upstream, f"http://127.0.0.1:{proxy_port}"


async def test_proxy_strips_its_prefix_and_says_it_forwarded(
    session_serve: Serve,
) -> None:
    _, base = await _proxied(session_serve)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/ops/jobs/x?a=1", data=b"hi") as resp:
            seen: dict[str, Any] = await resp.json()
        assert seen["path"] == "/jobs/x?a=1"
        assert seen["method"] == "POST" and seen["body"] == "hi"
        assert seen["headers"]["X-Forwarded-Prefix"] == "/ops"
        assert seen["headers"]["X-Forwarded-For"] == "127.0.0.1"
        assert seen["headers"]["X-Forwarded-Host"] == base.split("//")[1]
        async with session.get(f"{base}/ops/redirect", allow_redirects=False) as resp:
            assert resp.status == 302
            assert resp.headers["Location"] == "/ops/jobs/"
        async with session.get(f"{base}/elsewhere") as resp:
            assert resp.status == 404


async def test_proxy_streams_an_event_stream_as_it_is_written(
    session_serve: Serve,
) -> None:
    upstream, base = await _proxied(session_serve)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/ops/stream") as resp,
    ):
        assert await resp.content.readuntil(b"\n\n") == b"data: first\n\n"
        upstream[RELEASE].set()
        assert await resp.content.readuntil(b"\n\n") == b"data: second\n\n"


async def test_chromium_is_the_system_binary_with_a_fresh_profile(
    browser: BrowserContext, shots: Screenshots, session_serve: Serve
) -> None:
    _, base = await _proxied(session_serve)
    page = await browser.new_page()
    await page.goto(f"{base}/ops/hello")
    await expect(page.locator("body")).to_contain_text('"path": "/hello"')
    shot = await shots.take(page, "echo through the proxy")
    assert shot.read_bytes().startswith(b"\x89PNG")
    # The browser is the system's Chromium, not one Playwright downloaded,
    # started with the flags the journeys rely on and a profile of its own.
    proc = await asyncio.create_subprocess_exec(
        str(CHROMIUM),
        "--version",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    installed = (await proc.communicate())[0].decode()
    await page.goto("chrome://version")
    await shots.take(page, "chrome version")
    version = await page.locator("#version").inner_text()
    assert version.split()[0] in installed.split(), (version, installed)
    executable = await page.locator("#executable_path").inner_text()
    assert "ms-playwright" not in executable  # not a downloaded browser
    line = (await page.locator("#command_line").inner_text()).split()
    assert set(FLAGS) <= set(line), line
    (profile,) = (arg for arg in line if arg.startswith("--user-data-dir="))
    assert "playwright_chromiumdev_profile-" in profile  # a fresh temporary one
