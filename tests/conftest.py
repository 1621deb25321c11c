"""Shared fixtures. Keep this file small: add fixtures with targeted edits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

Serve = Callable[..., Awaitable[tuple[web.AppRunner, int]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``await serve(app, **runner_kwargs) -> (runner, port)``: the app on a real
    socket at 127.0.0.1 (free port); cleaned up at the end unless the test did."""
    runners: list[web.AppRunner] = []

    async def _serve(app: web.Application, **kwargs: Any) -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(app, **kwargs)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port: int = runner.addresses[0][1]
        return runner, port

    yield _serve
    for runner in runners:
        if runner.server is not None:
            await runner.cleanup()
